import zipfile

import pytest

from effnet.preprocessing import LITE_MEAN, LITE_STD, Preprocessing
from effnet.runtime.metadata import ModelMetadata, append_tflite_metadata, read_tflite_metadata

METADATA = ModelMetadata(
    model_name="efficientnet_lite0",
    preprocessing=Preprocessing(input_size=(224, 192), mean=LITE_MEAN, std=LITE_STD, crop_pct=0.9),
    labels=("tabby", "naïve café", "rocket"),
    input_layout="NHWC",
    quantization="int8",
)


def test_round_trip_through_a_dict_and_onnx_props():
    assert ModelMetadata.from_dict(METADATA.to_dict()) == METADATA
    props = METADATA.to_onnx_props()
    assert all(isinstance(value, str) for value in props.values())
    assert ModelMetadata.from_onnx_props(props) == METADATA
    assert ModelMetadata.from_onnx_props({"some_other_tool": "x"}) is None


def test_round_trip_through_a_zip_appended_to_a_tflite_file(tmp_path):
    path = tmp_path / "model.tflite"
    flatbuffer = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4
    path.write_bytes(flatbuffer)
    assert read_tflite_metadata(path) is None
    append_tflite_metadata(path, METADATA)
    assert path.read_bytes().startswith(flatbuffer)  # the model itself is untouched
    assert read_tflite_metadata(path) == METADATA
    with zipfile.ZipFile(path) as archive:
        assert archive.read("labels.txt").decode() == "tabby\nnaïve café\nrocket\n"


def test_without_labels_and_from_a_newer_effnet():
    bare = ModelMetadata("mobilenet_v2_100", Preprocessing(), labels=None, output="features")
    assert "labels" not in bare.to_onnx_props()
    assert ModelMetadata.from_onnx_props(bare.to_onnx_props()) == bare
    newer = dict(bare.to_dict(), effnet_metadata_version=99)
    with pytest.raises(ValueError, match=r"model.onnx: effnet metadata version 99 is newer"):
        ModelMetadata.from_dict(newer, "model.onnx")


@pytest.mark.parametrize(
    "field, value", [("input_layout", "HWC"), ("output", "boxes"), ("quantization", "int4")]
)
def test_invalid_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        ModelMetadata("m", Preprocessing(), **{field: value})
