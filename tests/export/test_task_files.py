"""The frame of a task's Model Maker ``export`` (`effnet.export.task_files`): formats, options and the files
written, with a stand-in for the task's model file."""

from enum import Enum

import pytest

from effnet.export.task_files import export_formats, export_task_files


class ExportFormat(Enum):
    TFLITE = "TFLITE"
    SAVED_MODEL = "SAVED_MODEL"


def test_export_formats_normalizes_names_and_members_once_each():
    assert export_formats(None) == ["tflite", "label"]
    assert export_formats(["TFLite", ExportFormat.TFLITE, "ExportFormat.LABEL"]) == ["tflite", "label"]
    assert export_formats(ExportFormat.SAVED_MODEL.value) == ["saved_model"]
    assert export_formats(["saved_model", "checkpoint"], saved_model_as="checkpoint") == ["checkpoint"]
    with pytest.raises(ValueError, match="export_format 'tfjs': effnet writes tflite, onnx"):
        export_formats("tfjs")


class Model:
    label_names = ("cat", "dog")

    def save(self, folder):
        folder.mkdir()
        return folder


def test_export_task_files_writes_each_format_asked_for(tmp_path):
    asked = []

    def write_model(name, path, quantization_config, representative_data):
        asked.append((name, path.name, quantization_config, representative_data))
        path.write_bytes(b"model")
        return path

    written = export_task_files(
        Model(),
        write_model,
        tmp_path,
        export_format=["onnx", "label", "saved_model"],
        representative_data=[1],
    )
    assert asked == [("onnx", "model.onnx", "default", [1])]
    assert (tmp_path / "labels.txt").read_text() == "cat\ndog\n"
    assert written == {
        "onnx": tmp_path / "model.onnx",
        "label": tmp_path / "labels.txt",
        "saved_model": tmp_path / "saved_model",
    }


def test_export_task_files_accepts_only_the_model_maker_options_it_is_given(tmp_path):
    def write_model(*_):
        raise AssertionError("not reached")

    accepted = ("with_metadata",)
    export_task_files(
        Model(), write_model, tmp_path, export_format="label", accepted_options=accepted, with_metadata=1
    )
    with pytest.raises(TypeError, match=r"unknown arguments \['tfjs_folder_name'\]"):
        export_task_files(Model(), write_model, tmp_path, export_format="label", tfjs_folder_name="x")
