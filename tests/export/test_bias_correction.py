import numpy as np
import pytest
import torch

import effnet
from effnet.export import QuantizationConfig, export_onnx, export_tflite
from effnet.export.bias_correction import MIN_IMAGES, correct_biases, significant_shift

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def outputs(model, batch):
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


def per_layer_files(model, images, tmp_path, exporter):
    """The model as an int8 file with and without bias correction, both with nearest weight rounding (GPTQ,
    the portable .onnx default, removes much of the shift itself)."""
    suffix = ".onnx" if exporter is export_onnx else ".tflite"
    return {
        corrected: exporter(
            model,
            tmp_path / f"{corrected}{suffix}",
            QuantizationConfig(
                "int8", images, quantization_steps=32, bias_correction=corrected, weight_rounding="nearest"
            ),
        )
        for corrected in (False, True)
    }


@pytest.mark.slow
@pytest.mark.parametrize("exporter", [export_onnx, export_tflite], ids=["onnx", "tflite"])
def test_int8_bias_correction_removes_the_output_shift_layer_by_layer(
    small_model, small_images, tmp_path, exporter
):
    if exporter is export_tflite:
        pytest.importorskip("litert_torch")
        pytest.importorskip("ai_edge_quantizer")
    from effnet import runtime

    held_out = small_images[32:]
    before = small_model.classifier.bias.clone()
    files = per_layer_files(small_model, small_images, tmp_path, exporter)
    error = {
        key: np.sqrt(
            np.mean((runtime.load(path).predict_batch(held_out) - outputs(small_model, held_out)) ** 2)
        )
        for key, path in files.items()
    }
    print(f"RMS error to PyTorch, by bias correction: {error}")
    # on images it was not measured on, the corrected file is much closer to PyTorch
    assert error[True] < 0.75 * error[False]
    assert files[True].check.top1_agreement >= 0.8
    # the same file size: only the integer biases changed
    assert abs(files[True].stat().st_size - files[False].stat().st_size) < 1024
    assert torch.equal(small_model.classifier.bias, before)  # the caller's model is untouched


@pytest.mark.slow
def test_embedding_models_are_corrected_too(small_images, tmp_path):
    """No classifier bias to fold a shift into: the convolutions' biases carry the correction."""
    from effnet import runtime

    features = effnet.create_model("efficientnet_lite0", num_classes=0, pretrained=True, input_size=96)
    files = per_layer_files(features.eval(), small_images, tmp_path, export_onnx)
    held_out = small_images[32:]
    reference = outputs(features, held_out)

    def cosine(path):
        got = runtime.load(path).predict_batch(held_out)
        norms = np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1)
        return np.mean(np.sum(got * reference, 1) / norms)

    assert cosine(files[True]) > cosine(files[False])
    assert cosine(files[True]) > 0.99


class RecordingLayers:
    """A quantized 'file' of two layers in a chain: layer 1's output moves with layer 0's bias."""

    def __init__(self):
        self.bias = np.array([[0.5, -0.2], [0.1, 0.3]])  # the int8 file's offsets per layer, per channel
        self.calls = []

    def names(self):
        return ["first", "second"]

    def float_means(self, images):
        return [np.zeros((len(images), 2)), np.zeros((len(images), 2))]

    def quantized_mean(self, index, images):
        self.calls.append(index)
        upstream = self.bias[0].sum() if index == 1 else 0.0  # what layer 0 passes on
        return np.tile(self.bias[index] + upstream, (len(images), 1))

    def shift_bias(self, index, shift):
        self.bias[index] += shift


def test_layers_are_corrected_in_order_each_after_the_ones_before_it():
    layers = RecordingLayers()
    result = correct_biases(layers, np.zeros((MIN_IMAGES, 3, 8, 8), np.float32))
    assert layers.calls == [0, 1]
    # layer 1 was measured after layer 0 was fixed, so it only removes its own offset
    np.testing.assert_allclose(layers.bias, 0.0, atol=1e-12)
    assert result.layers == 2 and result.images == MIN_IMAGES
    assert result.largest_shift == pytest.approx(0.5)


def test_only_shifts_that_stand_out_from_the_noise_are_corrected():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (64, 1000))  # e.g. 1000 logits, one value per image: no real shift
    assert np.count_nonzero(significant_shift(noise)) < 10  # 3 standard errors: ~3 in 1000 by chance
    shifted = noise + np.where(np.arange(1000) < 500, 2.0, 0.0)  # half the channels really shifted
    kept = significant_shift(shifted)
    assert np.all(kept[:500] != 0) and np.count_nonzero(kept[500:]) < 10
    np.testing.assert_allclose(kept[:500], shifted[:, :500].mean(axis=0))


def test_bias_correction_is_skipped_without_enough_images_or_layers():
    layers = RecordingLayers()
    assert correct_biases(layers, np.zeros((MIN_IMAGES - 1, 3, 8, 8), np.float32)) is None
    assert correct_biases(layers, None) is None
    assert layers.calls == []
    empty = RecordingLayers()
    empty.names = lambda: []
    assert correct_biases(empty, np.zeros((MIN_IMAGES, 3, 8, 8), np.float32)) is None
