"""The Model Maker detection workflow on generated data: create (frozen backbone) -> evaluate -> save ->
load, with SSDLite-MobileNetV2 (ImageNet backbone) at 128 px: the cheapest detector to train on a CPU."""

from __future__ import annotations

import numpy as np
import pytest

from effnet import object_detector

MODEL, SIZE = "ssdlite_mobilenet_v2", 128
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(detection_parts, tmp_path_factory, one_torch_thread):
    train, _ = detection_parts
    run = tmp_path_factory.mktemp("run") / "ssdlite"
    model = object_detector.create(
        train, model_spec=MODEL, epochs=25, batch_size=8, input_size=SIZE, model_dir=run
    )
    return model, run


@pytest.mark.slow
def test_training_lowers_the_loss_and_detects_far_above_an_untrained_detector(trained, detection_parts):
    train, test = detection_parts
    model, _ = trained
    losses = [row["train_loss"] for row in model.history]
    assert len(losses) == 25 and losses[-1] < 0.6 * losses[0]
    metrics = model.evaluate(test)
    untrained = object_detector.create(train, model_spec=MODEL, input_size=SIZE, do_train=False)
    before = untrained.evaluate(test)
    # measured: AP50 0.39 after these 25 epochs, 0.26 after 12; an untrained head scores ~0.0
    assert metrics["AP50"] > 0.3
    assert before["AP50"] < 0.05
    assert set(metrics) >= {"AP", "AP50", "AP75", "ARmax100", "AP_/cat", "AP_/coin"}


@pytest.mark.slow
def test_save_and_load_give_the_same_detections(trained, detection_parts):
    _, test = detection_parts
    model, run = trained
    for name in ("model.safetensors", "config.json", "labels.txt", "history.json"):
        assert (run / name).is_file(), name
    loaded = object_detector.load(run)
    assert loaded.label_names == model.label_names and loaded.input_size == SIZE
    assert loaded.history == model.history
    for ours, theirs in zip(model.detect(test), loaded.detect(test), strict=True):
        np.testing.assert_array_equal(ours.boxes, theirs.boxes)
        np.testing.assert_array_equal(ours.scores, theirs.scores)
        np.testing.assert_array_equal(ours.labels, theirs.labels)


@pytest.mark.slow
def test_report_draws_the_test_images(trained, detection_parts, tmp_path):
    _, test = detection_parts
    model, _ = trained
    metrics, report = model.write_report(tmp_path, test, {"dataset": "generated"}, images=4)
    assert report.name == "report.html" and "AP per class" in report.read_text()
    for name in ("training_curves.png", "ap_per_class.png", "detections.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert metrics == model.evaluate(test)


@pytest.mark.slow
def test_exported_onnx_file_scores_what_evaluate_reported(trained, detection_parts, tmp_path):
    pytest.importorskip("onnxruntime")
    _, test = detection_parts
    model, _ = trained
    written = model.export(tmp_path, export_format=["onnx", "label"], quantization_config=None)
    assert (tmp_path / "labels.txt").read_text().split() == model.label_names
    # evaluate runs the post-processing the file holds (model.postprocessing): the round trip the issue asks
    # for, evaluate_tflite on the float file within 0.5 AP point of evaluate
    assert model.postprocessing == {"score_threshold": 0.001, "iou_threshold": 0.5, "max_detections": 25}
    exported, expected = model.evaluate_tflite(written["onnx"], test), model.evaluate(test)
    assert exported["AP"] == pytest.approx(expected["AP"], abs=0.005)
    assert exported["AP50"] == pytest.approx(expected["AP50"], abs=0.005)


def test_a_reloaded_efficientdet_keeps_its_backbone_weights_conventions(detection_parts, tmp_path):
    """EfficientDet-Lite's backbone weights were trained in TensorFlow (SAME padding, BN eps 1e-3): a
    detector rebuilt from its run folder must keep them, or every output moves."""
    import torch

    train, _ = detection_parts
    model = object_detector.create(train, model_spec="efficientdet_lite0", input_size=64, do_train=False)
    assert model.network.backbone.padding == "same"
    loaded = object_detector.load(model.save(tmp_path / "run"))
    assert loaded.network.backbone.padding == "same"
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for before, after in zip(model.network(images), loaded.network(images), strict=True):
            torch.testing.assert_close(after, before, rtol=0, atol=0)
