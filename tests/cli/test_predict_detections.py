"""`effnet predict --model det.onnx IMAGE... [--json] [--draw OUT_DIR]` with an exported detector file."""

import json

import numpy as np
import pytest
from PIL import Image
from tiny_detector import LABELS, tiny_detector

from effnet.cli import main
from effnet.runtime import load

pytest.importorskip("onnxscript")
skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    from effnet.export.detection import export_detector

    folder = tmp_path_factory.mktemp("detector")
    return export_detector(tiny_detector(), folder / "det.onnx", max_detections=20, pre_nms_top_k=48)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("astronaut", "coffee", "chelsea"):
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(skimage_data, name)()).convert("RGB").save(path, quality=95)
        paths.append(str(path))
    return paths


def test_json_lists_each_images_detections_in_its_pixels(detector_file, photos, capsys):
    assert main(["predict", "--model", str(detector_file), *photos, "--json", "--threshold", "0.3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [entry["file"] for entry in printed] == photos
    predictor = load(detector_file)
    for entry, path in zip(printed, photos, strict=True):
        assert entry["detections"] == json.loads(json.dumps(predictor.detect(path, score_threshold=0.3)))
        width, height = Image.open(path).size
        for detection in entry["detections"]:
            xmin, ymin, xmax, ymax = detection["box"]
            assert 0 <= xmin <= xmax <= width and 0 <= ymin <= ymax <= height
            assert detection["label"] == LABELS[detection["index"]] and detection["score"] >= 0.3
    assert sum(len(entry["detections"]) for entry in printed) > 0


def test_text_output_and_a_broken_image_among_good_ones(detector_file, photos, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code = main(["predict", "--model", str(detector_file), photos[0], str(broken)])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.out.splitlines()
    assert lines[0] == photos[0] and all(line.startswith("  ") for line in lines[1:]) and len(lines) > 1
    assert captured.err.startswith(f"effnet predict: {broken}") and captured.err.count("\n") == 1


def test_draw_writes_each_image_with_its_boxes(detector_file, photos, tmp_path, capsys):
    out = tmp_path / "drawn"
    assert main(["predict", "--model", str(detector_file), *photos[:2], "--draw", str(out)]) == 0
    capsys.readouterr()
    predictor = load(detector_file)
    for path in photos[:2]:
        name = path.rsplit("/", 1)[-1].replace(".jpg", ".png")
        drawn = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        original = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert drawn.shape == original.shape
        found = predictor.detect(path, score_threshold=0.3)
        changed = np.abs(drawn - original).sum(axis=2) > 0
        if not found:
            assert not changed.any()
            continue
        xmin, ymin, _, ymax = (round(v) for v in found[0]["box"])
        edge = changed[ymin : ymax + 1, max(xmin - 2, 0) : xmin + 3]  # the best box's left edge is drawn
        assert edge.mean() > 0.5
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "coffee.png"]


def test_draw_with_a_classifier_is_a_one_line_error(photos, tmp_path, capsys):
    import effnet
    from effnet.export import export_onnx

    classifier = effnet.create_model("mobilenet_v1_025", num_classes=3, pretrained=False, input_size=32)
    file = export_onnx(classifier.eval(), tmp_path / "classifier.onnx")
    assert main(["predict", "--model", str(file), photos[0], "--draw", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("effnet predict: error: --draw:") and "not an object detector" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
