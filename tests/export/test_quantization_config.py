import numpy as np
import pytest

from effnet.data.dataset import ImageDataset
from effnet.export import QuantizationConfig
from effnet.export.quantization import resolve_quantization
from effnet.export.representative import representative_arrays
from effnet.preprocessing import Preprocessing


def test_for_int8_mirrors_model_maker():
    data = np.zeros((2, 3, 8, 8), np.float32)
    config = QuantizationConfig.for_int8(data)
    assert (config.mode, config.quantization_steps) == ("int8", 500)
    assert (config.inference_input_type, config.inference_output_type) == ("uint8", "uint8")
    assert config.representative_data is data
    assert config.bias_correction
    assert not QuantizationConfig.for_int8(data, bias_correction=False).bias_correction
    assert QuantizationConfig.for_int8(data, 10, np.int8, "float32").inference_input_type == "int8"
    assert QuantizationConfig.for_float16().mode == "fp16"
    assert QuantizationConfig.for_dynamic().mode == "dynamic"
    assert QuantizationConfig("float16").mode == "fp16"


def test_int16_is_calibrated_like_int8_with_float_input_and_output():
    data = np.zeros((2, 3, 8, 8), np.float32)
    config = QuantizationConfig.for_int16(data, 100)
    assert (config.mode, config.quantization_steps, config.calibrated) == ("int16", 100, True)
    assert (config.inference_input_type, config.inference_output_type) == ("float32", "float32")
    assert config.bias_correction
    assert not QuantizationConfig.for_int16(data, bias_correction=False).bias_correction
    assert [QuantizationConfig(name).mode for name in ("a16w8", "16x8", "INT16")] == ["int16"] * 3
    assert QuantizationConfig.from_name("int16").mode == "int16"
    assert QuantizationConfig("int8").calibrated
    assert not QuantizationConfig("fp16").calibrated and not QuantizationConfig("dynamic").calibrated


def test_finetune_steps_is_off_by_default_and_replaces_bias_correction():
    data = np.zeros((2, 3, 8, 8), np.float32)
    assert QuantizationConfig.for_int8(data).finetune_steps == 0
    assert QuantizationConfig.for_int8(data).corrects_biases
    tuned = QuantizationConfig.for_int8(data, finetune_steps=300)
    # the fine-tuning moved the layers' means on purpose: bias correction would pull them back
    assert tuned.finetune_steps == 300 and tuned.bias_correction and not tuned.corrects_biases
    assert QuantizationConfig.for_int16(data, finetune_steps=5).finetune_steps == 5
    assert not QuantizationConfig("int8", bias_correction=False).corrects_biases
    assert not QuantizationConfig("fp16").corrects_biases


def test_weight_rounding_is_gptq_only_for_7_bit_weights_by_default_and_keeps_bias_correction():
    data = np.zeros((2, 3, 8, 8), np.float32)
    default = QuantizationConfig.for_int8(data)
    assert default.weight_rounding == "auto" and default.int8_format == "portable" and default.portable_onnx
    # a portable int8 .onnx file (7-bit weights) gets GPTQ, a .tflite file or a "vnni" .onnx file nearest
    assert default.rounding_for(portable=True) == "gptq" and default.rounding_for(portable=False) == "nearest"
    assert not QuantizationConfig.for_int8(data, int8_format="vnni").portable_onnx
    assert not QuantizationConfig.for_int16(data).portable_onnx
    assert QuantizationConfig.for_int8(data, finetune_steps=5).rounding_for(portable=True) == "nearest"
    assert (
        QuantizationConfig("int8", data, weight_rounding="nearest").rounding_for(portable=True) == "nearest"
    )
    assert QuantizationConfig("fp16").rounding_for(portable=False) == "nearest"
    gptq = QuantizationConfig.for_int8(data, weight_rounding="gptq")
    assert gptq.weight_rounding == "gptq" and gptq.corrects_biases
    assert QuantizationConfig.for_int16(data, weight_rounding="gptq").weight_rounding == "gptq"


def test_from_name_and_resolve():
    assert QuantizationConfig.from_name(None) is None
    assert QuantizationConfig.from_name("none") is None
    assert QuantizationConfig.from_name("int8").inference_input_type == "float32"
    filled = resolve_quantization(QuantizationConfig("int8"), representative_data=[1])
    assert filled.representative_data == [1]
    kept = resolve_quantization(QuantizationConfig("int8", bias_correction=False), representative_data=[1])
    assert kept.representative_data == [1] and not kept.bias_correction
    with pytest.raises(TypeError, match="quantization must be None"):
        resolve_quantization(8, None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "int4"}, "quantization mode must be one of"),
        ({"mode": "int8", "inference_input_type": "int16"}, "inference_input_type must be one of"),
        ({"mode": "fp16", "inference_input_type": "uint8"}, "keeps float32 input and output"),
        ({"mode": "int16", "inference_output_type": "int8"}, "keeps float32 input and output"),
        ({"mode": "int8", "quantization_steps": 0}, "quantization_steps must be a positive integer"),
        ({"mode": "int8", "finetune_steps": -1}, "finetune_steps must be a non-negative integer"),
        ({"mode": "int8", "finetune_steps": 1.5}, "finetune_steps must be a non-negative integer"),
        ({"mode": "fp16", "finetune_steps": 10}, "finetune_steps applies to int8 and int16"),
        ({"mode": "dynamic", "finetune_steps": 10}, "finetune_steps applies to int8 and int16"),
        ({"mode": "int8", "weight_rounding": "up"}, "weight_rounding must be one of"),
        ({"mode": "int8", "int8_format": "avx2"}, "int8_format must be one of"),
        ({"mode": "fp16", "weight_rounding": "gptq"}, "needs calibration images: int8 or int16"),
        ({"mode": "int8", "weight_rounding": "gptq", "finetune_steps": 5}, "are alternatives"),
    ],
)
def test_invalid_configs_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QuantizationConfig(**kwargs)


PRE = Preprocessing(input_size=32)


def test_representative_arrays_from_arrays_batches_and_pairs():
    batch = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    assert representative_arrays(batch, PRE, limit=3).shape == (3, 3, 32, 32)
    batches = [(batch[:2], np.array([0, 1])), (batch[2:], np.array([0, 1, 2]))]  # as iter_batches yields
    np.testing.assert_array_equal(representative_arrays(iter(batches), PRE, limit=10), batch)
    single_images = [image for image in batch]
    assert representative_arrays(single_images, PRE, limit=4).shape == (4, 3, 32, 32)


def test_representative_arrays_decode_paths_and_datasets(tmp_path):
    from PIL import Image

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 50), (i * 80, 20, 200)).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    from_paths = representative_arrays([*paths, tmp_path / "broken.png"], PRE, limit=10)
    assert from_paths.shape == (3, 3, 32, 32) and from_paths.dtype == np.float32
    dataset = ImageDataset.from_samples(paths, [0, 1, 1], ["a", "b"])
    np.testing.assert_allclose(representative_arrays(dataset, PRE, limit=3), from_paths)


def test_representative_images_from_a_dataset_cover_every_class(tmp_path):
    """A folder lists its images class by class: the first 9 of 30 would all be class 0."""
    from PIL import Image

    paths, labels = [], []
    for label in range(3):
        for i in range(10):
            paths.append(tmp_path / f"{label}_{i}.png")
            labels.append(label)
            Image.new("RGB", (32, 32), (label * 100, 0, 0)).save(paths[-1])
    dataset = ImageDataset.from_samples(paths, labels, ["a", "b", "c"])
    arrays = representative_arrays(dataset, PRE, limit=9)
    red = np.round(arrays[:, 0, 0, 0], 3)
    assert len(arrays) == 9 and len(set(red)) == 3  # all three classes
    np.testing.assert_array_equal(representative_arrays(dataset, PRE, limit=9), arrays)  # reproducible


@pytest.mark.parametrize(
    "data, error, message",
    [
        (None, ValueError, "int8 quantization needs representative_data"),
        (np.zeros((2, 3, 16, 16), np.float32), ValueError, r"do not match the model input \(3, 32, 32\)"),
        (np.zeros((2, 3, 32, 32), np.uint8), ValueError, "expected preprocessed float32 images"),
        ("images/", TypeError, "pass a list of image paths, or ImageDataset.from_folder"),
        ([], ValueError, "no usable image found"),
    ],
)
def test_representative_arrays_errors(data, error, message):
    with pytest.raises(error, match=message):
        representative_arrays(data, PRE, limit=4)
