"""The segmentation commands end to end on the generated set: data -> train -> evaluate -> export -> predict
--draw, each a thin shell over image_segmenter."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from effnet.cli import main


@pytest.mark.slow
def test_data_train_evaluate_export_predict(tmp_path, capsys, one_torch_thread):
    data = tmp_path / "set"
    assert (
        main(["data", "segmentation", str(data), "--train", "20", "--test", "4", "--image-size", "64"]) == 0
    )
    assert "20 train and 4 test images (64 px JPEG) with exact masks" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--epochs", "3", "--image-size", "64"]) == 0
    printed = capsys.readouterr().out
    assert "train 18, validation 2, test 4" in printed and "mIoU" in printed
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "config.json").read_text())["model_spec"] == "lraspp_efficientnet_lite0"
    for name in ("report.html", "overlays.png", "iou_per_class.png"):
        assert (run / name).is_file(), name
    assert main(["evaluate", str(run), str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mIoU"] == pytest.approx(metrics["mIoU"])
    assert main(["export", str(run), "--format", "onnx", "--quantize", "none"]) == 0
    exported = run / "export" / "model.onnx"
    image = data / "test" / "images" / "00000.jpg"
    shutil.copy(image, tmp_path / "photo.jpg")
    drawn = tmp_path / "drawn"
    assert main(["predict", "--model", str(exported), str(tmp_path / "photo.jpg"), "--draw", str(drawn)]) == 0
    assert "background" in capsys.readouterr().out
    with Image.open(drawn / "photo.png") as overlay, Image.open(image) as original:
        assert overlay.size == original.size


def test_segmentation_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "data" / "masks").mkdir(parents=True)
    assert main(["train", str(tmp_path / "data"), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "no images/ folder next to masks/" in err and "Traceback" not in err
