import json

import numpy as np
import pytest
import torch

import effnet
from effnet.export import ExportedPath, QuantizationConfig, export_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def run_onnx(path, batch):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    if session.get_inputs()[0].shape[0] == 1:
        return np.concatenate([session.run(None, {name: image[None]})[0] for image in batch])
    return session.run(None, {name: batch})[0]


def torch_outputs(model, batch):
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


def top1(outputs):
    return outputs.argmax(axis=1)


@pytest.fixture
def float_file(onnx_float_file):
    return onnx_float_file


def test_float_file_matches_pytorch_and_is_one_self_contained_file(float_file, small_model, small_images):
    assert isinstance(float_file, ExportedPath)
    assert float_file.check.quantization == "none" and float_file.check.max_abs_diff < 1e-4
    assert sorted(p.name for p in float_file.parent.iterdir()) == [
        "model.onnx"
    ]  # no weights file, no leftovers
    outputs = run_onnx(float_file, small_images[:8])
    np.testing.assert_allclose(outputs, torch_outputs(small_model, small_images[:8]), atol=1e-4)

    proto = onnx.load(float_file)
    assert max(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")) >= 18
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 96, 96]


def test_metadata_props_hold_name_labels_preprocessing_and_layout(float_file, small_model):
    props = {entry.key: entry.value for entry in onnx.load(float_file).metadata_props}
    assert props["model_name"] == "efficientnet_lite0"
    assert json.loads(props["labels"]) == small_model.labels
    assert json.loads(props["preprocessing"]) == small_model.preprocessing.to_dict()
    assert props["input_layout"] == "NCHW"
    assert props["quantization"] == "none"


@pytest.mark.slow
def test_dynamic_batch_with_hard_swish_and_squeeze_excite(tmp_path, warmed_up):
    model = warmed_up(effnet.create_model("mobilenet_v3_small_100", num_classes=5, input_size=64), 64)
    path = export_onnx(model, tmp_path / "mnv3.onnx", dynamic_batch=True)
    batch = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    expected = torch_outputs(model, batch)
    assert np.abs(expected).max() > 0.1  # warmed-up statistics: the comparison is not between near-zeros
    np.testing.assert_allclose(run_onnx(path, batch), expected, atol=1e-4)


@pytest.mark.slow
def test_int8_is_small_and_agrees_with_float_on_held_out_images(
    float_file, small_model, small_images, tmp_path
):
    config = QuantizationConfig("int8", small_images, quantization_steps=32)
    path = export_onnx(small_model, tmp_path / "int8.onnx", quantize=config)
    assert path.stat().st_size <= 0.30 * float_file.stat().st_size
    assert path.check.inputs == "held-out images" and path.check.num_inputs == 16
    held_out = small_images[32:]
    agreement = (top1(run_onnx(path, held_out)) == top1(torch_outputs(small_model, held_out))).mean()
    assert agreement >= 0.8
    assert path.check.top1_agreement == pytest.approx(agreement)
    props = {entry.key: entry.value for entry in onnx.load(path).metadata_props}
    assert props["quantization"] == "int8"


def test_fp16_halves_the_file_and_keeps_predictions(
    float_file, small_model, small_images, reuse_onnx_conversion, tmp_path
):
    path = export_onnx(small_model, tmp_path / "fp16.onnx", quantize="fp16", representative_data=small_images)
    assert path.stat().st_size <= 0.55 * float_file.stat().st_size
    assert path.check.inputs == "representative images" and path.check.top1_agreement == 1.0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == session.get_outputs()[0].type == "tensor(float)"


def test_dynamic_quantization_shrinks_the_file_and_reports_its_agreement(
    float_file, small_model, reuse_onnx_conversion, tmp_path
):
    # ONNX Runtime's dynamic int8 is lossy on depthwise convolutions (see export_onnx): only the size and the
    # reported check are asserted.
    path = export_onnx(small_model, tmp_path / "dynamic.onnx", quantize="dynamic")
    assert path.stat().st_size <= 0.30 * float_file.stat().st_size
    assert path.check.quantization == "dynamic" and path.check.inputs == "random inputs"
    assert 0.0 <= path.check.top1_agreement <= 1.0


def test_int8_without_representative_data_fails_before_exporting(small_model, tmp_path):
    with pytest.raises(ValueError, match="int8 quantization needs representative_data"):
        export_onnx(small_model, tmp_path / "model.onnx", quantize="int8")
    assert list(tmp_path.iterdir()) == []


def test_wrong_file_name_and_bad_arguments(small_model, tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(small_model, tmp_path / "model.tflite")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export_onnx(small_model, tmp_path)
    with pytest.raises(ValueError, match="quantization mode must be one of"):
        export_onnx(small_model, tmp_path / "model.onnx", quantize="int4")
    with pytest.raises(ValueError, match="labels: got 2 names for a model with 5 classes"):
        export_onnx(small_model, tmp_path / "model.onnx", labels=["a", "b"])
    assert list(tmp_path.iterdir()) == []
