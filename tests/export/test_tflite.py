import importlib.util
import zipfile

import numpy as np
import pytest
import torch

from effnet import runtime
from effnet.data.transforms import transforms_for
from effnet.export import QuantizationConfig, export_tflite
from effnet.export import tflite as tflite_export

# find_spec, not importorskip: importing LiteRT loads JAX, which would switch every later DataLoader in the
# session (the data tests included) to in-process decoding at collection time
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_quantizer") is None,
    reason='needs the litert extra: pip install "effnet[litert]"',
)
Interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter


def run_tflite(path, nchw_batch):
    """Run a float-input .tflite file directly with the interpreter (not through effnet.runtime)."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in nchw_batch:
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(image.transpose(1, 2, 0)[None]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]))
    return np.concatenate(outputs)


def torch_outputs(model, batch):
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


@pytest.fixture(scope="module")
def float_file(small_model, tmp_path_factory):
    return export_tflite(small_model, tmp_path_factory.mktemp("float") / "model.tflite")


@pytest.fixture
def reuse_conversion(monkeypatch, float_file):
    """Skip the litert-torch conversion (seconds) in export_tflite for small_model by handing out the float
    file's flatbuffer; quantization, metadata, the check and the atomic write still run."""
    converted = float_file.read_bytes()  # the trailing metadata archive is ignored by the quantizer

    def convert(_litert, network, file):
        assert network.name == "efficientnet_lite0" and network.preprocessing.input_size == (96, 96)
        file.write_bytes(converted)

    monkeypatch.setattr(tflite_export, "_torch_to_tflite", convert)


def test_float_file_matches_pytorch_takes_nhwc_and_carries_metadata(float_file, small_model, small_images):
    path = float_file
    assert path.check.quantization == "none" and path.check.max_abs_diff < 1e-4
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.tflite"]
    interpreter = Interpreter(model_path=str(path))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 96, 96, 3]
    np.testing.assert_allclose(
        run_tflite(path, small_images[:4]), torch_outputs(small_model, small_images[:4]), atol=1e-4
    )
    with zipfile.ZipFile(path) as archive:  # Model Maker's place for the labels: unzip model.tflite
        assert archive.read("labels.txt").decode().split() == small_model.labels
    loaded = runtime.load(path)
    assert loaded.metadata.input_layout == "NHWC" and loaded.preprocessing == small_model.preprocessing


@pytest.mark.slow
def test_int8_with_uint8_io_agrees_on_real_photos(lite0, photo_paths, photo_crops, tmp_path):
    transform = transforms_for(lite0)
    calibration = np.stack([transform(crop) for crop in photo_crops(24, seed=2)])
    config = QuantizationConfig.for_int8(calibration, quantization_steps=16)
    assert (config.inference_input_type, config.inference_output_type) == ("uint8", "uint8")
    path = export_tflite(lite0, tmp_path / "int8.tflite", quantization=config)

    float_bytes = 4 * sum(p.numel() for p in lite0.parameters())
    assert path.stat().st_size <= 0.30 * float_bytes
    assert path.check.inputs == "held-out images" and path.check.num_inputs == 8

    predictor = runtime.load(path)
    assert predictor.input_spec.dtype == np.uint8 and predictor.output_spec.dtype == np.uint8
    photos = list(photo_paths.values())
    logits = torch_outputs(lite0, transform.batch(photos))
    predicted = [p[0].index for p in predictor.predict(photos, top_k=1)]
    for row, index in zip(logits, predicted, strict=True):
        # the same class, or (a near tie: chelsea's tiger cat vs Egyptian cat) one whose float logit is
        # within one step of the uint8 output of the best
        assert row.max() - row[index] <= predictor.output_spec.scale
    assert sum(row.argmax() == index for row, index in zip(logits, predicted, strict=True)) >= 3
    cat, coffee, rocket, _ = predictor.predict(photos, top_k=3)
    assert "cat" in cat[0].label and coffee[0].label == "espresso"
    assert rocket[0].label in {"missile", "projectile", "space shuttle"}
    assert {"missile", "projectile"} <= {p.label for p in rocket}


def test_int8_with_int8_io_and_fp16_and_dynamic(small_model, small_images, reuse_conversion, tmp_path):
    int8 = export_tflite(
        small_model,
        tmp_path / "int8.tflite",
        QuantizationConfig.for_int8(
            small_images, 32, inference_input_type="int8", inference_output_type="int8"
        ),
    )
    predictor = runtime.load(int8)
    assert predictor.input_spec.dtype == np.int8 and predictor.output_spec.dtype == np.int8
    assert int8.check.top1_agreement >= 0.8

    fp16 = export_tflite(small_model, tmp_path / "fp16.tflite", "fp16", representative_data=small_images)
    assert fp16.check.quantization == "fp16" and fp16.check.top1_agreement == 1.0
    assert fp16.stat().st_size < 0.55 * 4 * sum(p.numel() for p in small_model.parameters())

    dynamic = export_tflite(small_model, tmp_path / "dynamic.tflite", QuantizationConfig.for_dynamic())
    assert runtime.load(dynamic).input_spec.dtype == np.float32
    assert dynamic.stat().st_size < 0.30 * 4 * sum(p.numel() for p in small_model.parameters())
