import numpy as np
import pytest
import torch

import effnet
from effnet.export import QuantizationConfig, export_onnx
from effnet.export.bias_correction import corrected_model, output_bias

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def outputs(model, batch):
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


def test_int8_output_shift_is_folded_into_the_classifier_bias(small_model, small_images, tmp_path):
    from effnet import runtime

    calibration, held_out = small_images[:32], small_images[32:]
    files = {
        corrected: export_onnx(
            small_model,
            tmp_path / f"{corrected}.onnx",
            QuantizationConfig("int8", small_images, quantization_steps=32, bias_correction=corrected),
        )
        for corrected in (False, True)
    }
    shift = {
        key: runtime.load(path).predict_batch(calibration) - outputs(small_model, calibration)
        for key, path in files.items()
    }
    mean_shift = {key: np.abs(value.mean(axis=0)).max() for key, value in shift.items()}
    assert mean_shift[False] > 0.01  # int8 shifts the outputs of this real-photo classifier ...
    assert mean_shift[True] < mean_shift[False] / 2  # ... and the corrected file cancels most of it
    error = {
        key: np.sqrt(
            np.mean((runtime.load(path).predict_batch(held_out) - outputs(small_model, held_out)) ** 2)
        )
        for key, path in files.items()
    }
    assert error[True] <= error[False] * 1.05  # on images it was not measured on, no worse
    assert files[True].check.top1_agreement >= 0.8
    # the caller's model is untouched: the correction is applied to the exported copy only
    assert torch.equal(output_bias(small_model), small_model.classifier.bias)


def test_models_without_a_classifier_bias_are_exported_uncorrected(small_images):
    features = effnet.create_model("efficientnet_lite0", num_classes=0, input_size=96)
    assert output_bias(features) is None
    assert corrected_model(features, lambda images: images, small_images) is None
    classifier = effnet.create_model("efficientnet_lite0", num_classes=5, input_size=96).eval()
    assert output_bias(classifier) is classifier.classifier.bias
    # too few calibration images for a trustworthy mean: skipped
    assert corrected_model(classifier, lambda images: outputs(classifier, images), small_images[:4]) is None
    before = classifier.classifier.bias.clone()
    shifted = corrected_model(classifier, lambda images: outputs(classifier, images) + 0.5, small_images)
    torch.testing.assert_close(shifted.classifier.bias, before - 0.5)
    assert torch.equal(classifier.classifier.bias, before)
