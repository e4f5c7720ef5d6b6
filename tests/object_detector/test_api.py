"""`object_detector`'s Model Maker surface: names, specs, argument checks and the run folder's errors."""

from __future__ import annotations

import pytest

from effnet import object_detector
from effnet.data import detection
from effnet.object_detector import model_spec


def test_names_match_model_maker():
    assert object_detector.DataLoader is detection.DetectionData
    spec = model_spec.get("efficientdet_lite2")
    assert isinstance(spec, object_detector.EfficientDetSpec) and spec.name == "efficientdet_lite2"
    assert spec.tflite_max_detections == 25  # Model Maker's EfficientDetSpec default
    assert (
        object_detector.EfficientDetSpec("efficientdet_lite0", hparams="image_size=256x256").input_size == 256
    )
    assert object_detector.EfficientDetSpec(hparams={"image_size": 192}).input_size == 192
    # Model Maker's TF Hub uri names the model
    hub = "https://tfhub.dev/tensorflow/efficientdet/lite3/feature-vector/1"
    assert object_detector.EfficientDetSpec(uri=hub).name == "efficientdet_lite3"
    # Model Maker's spelling and factories (tflite_model_maker.object_detector.EfficientDetLite1Spec)
    lite1 = object_detector.EfficientDetLite1Spec(
        model_name="efficientdet-lite1", uri=None, var_freeze_expr="x"
    )
    assert lite1.name == "efficientdet_lite1" and object_detector.EfficientDetLite4Spec().name.endswith(
        "lite4"
    )


def test_bad_specs_and_arguments_say_what_to_pass(detection_parts):
    train, _ = detection_parts
    with pytest.raises(ValueError, match="efficientdet_lite0"):
        model_spec.get("yolo_v8")
    with pytest.raises(ValueError, match="image_size"):
        object_detector.EfficientDetSpec(hparams="image_size=10")
    with pytest.raises(TypeError, match="DataLoader"):
        object_detector.create(["a.jpg"])
    with pytest.raises(TypeError, match="learning_rat"):
        object_detector.create(train, learning_rat=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        object_detector.create(train, model_spec="ssdlite_mobilenet_v2", input_size=64, batch_size=0)


def test_do_train_false_gives_the_untrained_detector(detection_parts):
    train, _ = detection_parts
    model = object_detector.create(train, model_spec="ssdlite_mobilenet_v2", input_size=96, do_train=False)
    assert model.label_names == train.label_names and model.input_size == 96 and model.history == []
    assert "ssdlite_mobilenet_v2" in repr(model)


def test_load_refuses_what_is_not_a_detector_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        object_detector.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "effnet.image_classifier/1"}')
    with pytest.raises(ValueError, match=r"image_classifier\.load"):
        object_detector.load(tmp_path)
