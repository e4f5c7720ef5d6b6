"""`effnet train` on detection data and `effnet evaluate` of the detector run: thin commands over
`effnet.object_detector`."""

from __future__ import annotations

import json

import pytest

from effnet.cli import main


@pytest.fixture(scope="module")
def detection_set(tmp_path_factory):
    from effnet.data.detection_set import write_detection_set

    return write_detection_set(tmp_path_factory.mktemp("data") / "set", train=24, test=12, image_size=96)


@pytest.fixture(scope="module")
def run(detection_set, tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("run") / "ssdlite"
    arguments = ["train", str(detection_set), "--model", "ssdlite_mobilenet_v2", "--image-size", "96"]
    assert main([*arguments, "--epochs", "2", "--val-split", "0", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_train_writes_a_detector_run_with_its_report(run):
    for name in (
        "model.safetensors",
        "config.json",
        "labels.txt",
        "metrics.json",
        "report.html",
        "detections.png",
    ):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["format"] == "effnet.object_detector/1"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"AP", "AP50", "ARmax100", "AP_/cat"} <= set(metrics)


@pytest.mark.slow
def test_evaluate_a_detector_run(run, detection_set, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run), str(detection_set), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((run / "metrics.json").read_text())


def test_detection_folder_without_label_map_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "label_map.txt" in error and "Traceback" not in error


@pytest.mark.slow
def test_export_a_detector_run(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "export"
    assert main(["export", str(run), "--format", "onnx", "--quantize", "none", "--out", str(out)]) == 0
    assert (out / "model.onnx").is_file() and (out / "labels.txt").read_text().split()[0] == "cat"
    from effnet.runtime import load

    assert load(out / "model.onnx").is_detector
