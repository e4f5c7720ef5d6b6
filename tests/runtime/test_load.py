"""Files the runtime cannot use fail with one message that names the file."""

import pytest

from effnet import runtime
from effnet.runtime import ModelFileError


def test_missing_file_folder_and_unknown_type(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.onnx: no such model file"):
        runtime.load(tmp_path / "nowhere.onnx")
    with pytest.raises(ModelFileError, match="is a folder"):
        runtime.load(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"torch")
    with pytest.raises(ModelFileError, match=r"model.pt: unknown model file type '.pt'; expected a .onnx"):
        runtime.load(tmp_path / "model.pt")
    (tmp_path / "empty.tflite").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"empty.tflite: empty file \(0 bytes\)"):
        runtime.load(tmp_path / "empty.tflite")


def test_text_file_renamed_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a model\n" * 20)
    with pytest.raises(ModelFileError, match=r"notes.onnx: not a readable ONNX model \(.+\); re-export it"):
        runtime.load(path)


def test_truncated_onnx(onnx_file, tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=r"truncated.onnx: not a readable ONNX model"):
        runtime.load(path)


@pytest.mark.parametrize("fraction", [0.5, 0.999])
def test_truncated_tflite(tflite_file, tmp_path, fraction):
    path = tmp_path / "truncated.tflite"
    path.write_bytes(tflite_file.read_bytes()[: int(tflite_file.stat().st_size * fraction)])
    with pytest.raises(ModelFileError, match=r"truncated.tflite: not a readable .tflite model \(.+\)"):
        runtime.load(path)


def test_text_file_renamed_to_tflite(tmp_path):
    pytest.importorskip("ai_edge_litert")
    path = tmp_path / "notes.tflite"
    path.write_text("hello\n" * 100)
    with pytest.raises(ModelFileError, match=r"notes.tflite: not a readable .tflite model"):
        runtime.load(path)
