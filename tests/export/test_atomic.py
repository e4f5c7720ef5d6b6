"""A failed export leaves nothing behind (and keeps a file that was already there); a missing optional
package is one clear line."""

import sys

import pytest

from effnet.export import ExportCheckError, export_onnx, export_tflite
from effnet.export import checks as export_checks
from effnet.export import onnx as onnx_export
from effnet.export import tflite as tflite_export


def half_written_then_fail(*args):
    file = next(a for a in args if hasattr(a, "write_bytes"))
    file.write_bytes(b"\x08\x01 half a model")
    raise RuntimeError("converter crashed")


def test_onnx_export_failure_leaves_no_files(small_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxscript")
    monkeypatch.setattr(onnx_export, "_torch_to_onnx", half_written_then_fail)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_onnx(small_model, tmp_path / "out" / "model.onnx")
    assert list((tmp_path / "out").iterdir()) == []  # no model.onnx, no hidden work folder


def test_failed_check_keeps_the_previous_file(small_model, reuse_onnx_conversion, tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous export")

    def failing_check(*args, **kwargs):
        raise ExportCheckError(f"{kwargs['target']}: outputs differ")

    monkeypatch.setattr(export_checks, "check_export", failing_check)
    with pytest.raises(ExportCheckError, match="outputs differ"):
        export_onnx(small_model, target)
    assert target.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_tflite_export_failure_leaves_no_files(small_model, tmp_path, monkeypatch):
    pytest.importorskip("litert_torch")
    monkeypatch.setattr(tflite_export, "_torch_to_tflite", half_written_then_fail)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_tflite(small_model, tmp_path / "model.tflite")
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_no_files(small_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxscript")

    def interrupted(*args):
        args[1].write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "_torch_to_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(small_model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "blocked, export, message",
    [
        ("litert_torch", export_tflite, '.tflite export needs litert-torch: pip install "effnet[litert]"'),
        ("onnxscript", export_onnx, '.onnx export needs onnxscript: pip install "effnet[onnx]"'),
    ],
)
def test_missing_optional_package_is_one_clear_line(
    blocked, export, message, small_model, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, blocked, None)  # makes `import blocked` fail as if not installed
    with pytest.raises(ImportError) as error:
        export(small_model, tmp_path / ("model" + (".tflite" if export is export_tflite else ".onnx")))
    assert str(error.value) == message
    assert list(tmp_path.iterdir()) == []


def quantizer_crash(*args, **kwargs):
    raise ValueError("calibration table has no entry for tensor 'x'\n(and a long engine trace)")


@pytest.mark.parametrize("file_format", ["onnx", pytest.param("tflite", marks=pytest.mark.slow)])
def test_a_failing_quantizer_is_one_line_and_leaves_no_files(
    small_model, small_images, tmp_path, monkeypatch, file_format
):
    if file_format == "tflite":
        pytest.importorskip("litert_torch")
        pytest.importorskip("ai_edge_quantizer")
        monkeypatch.setattr(tflite_export, "_quantize", quantizer_crash)
        export = export_tflite
    else:
        pytest.importorskip("onnxscript")
        monkeypatch.setattr(onnx_export, "_quantize_static", quantizer_crash)
        export = export_onnx
    expected = r"^int16 .*quantization of efficientnet_lite0 failed: calibration table .*'x'; nothing was"
    with pytest.raises(RuntimeError, match=expected):
        export(small_model, tmp_path / f"m.{file_format}", "int16", representative_data=small_images[:16])
    assert list(tmp_path.iterdir()) == []
