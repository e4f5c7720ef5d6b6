"""Files the runtime cannot use fail with one message that names the file."""

import numpy as np
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


# A SHA-256 of the model bytes travels inside each exported file (effnet.runtime.checksum).


def _flip_bit(source, target, position: float) -> None:
    data = bytearray(source.read_bytes())
    data[int(len(data) * position)] ^= 0x10
    target.write_bytes(bytes(data))


@pytest.mark.parametrize("fixture", ["onnx_file", "tflite_file"])
def test_sealed_file_loads_and_holds_its_digest(request, fixture):
    from effnet.runtime.checksum import verify_checksum

    path = request.getfixturevalue(fixture)
    assert verify_checksum(path) is True  # a digest was stored, and it matches
    assert runtime.load(path).predict(np.full((64, 64, 3), 128, np.uint8), top_k=1)


@pytest.mark.parametrize(("fixture", "suffix"), [("onnx_file", ".onnx"), ("tflite_file", ".tflite")])
@pytest.mark.parametrize("position", [0.3, 0.6])
def test_bit_flip_in_weights_is_a_one_line_error(request, tmp_path, fixture, suffix, position):
    path = tmp_path / f"flipped{suffix}"
    _flip_bit(request.getfixturevalue(fixture), path, position)
    with pytest.raises(ModelFileError) as info:
        runtime.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: checksum mismatch: file changed after export; re-export")
    assert "verify=False" in message and "\n" not in message
    runtime.load(path, verify=False)  # the user's way out: the engine still reads the file


def test_onnx_digest_entry_is_ordinary_metadata(onnx_file):
    onnx = pytest.importorskip("onnx")
    props = {p.key: p.value for p in onnx.load(onnx_file).metadata_props}
    assert len(props["effnet_sha256"]) == 64
    assert props["model_name"] == "efficientnet_lite0"


def test_damaged_digest_entry_is_a_mismatch(onnx_file, tmp_path):
    path = tmp_path / "tail.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[-70] ^= 0x01  # inside the entry's key: the entry no longer parses as effnet's
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        runtime.load(path)


def test_files_without_a_digest_load_unchecked(onnx_file, tmp_path):
    from effnet.runtime.checksum import verify_checksum

    path = tmp_path / "older.onnx"
    path.write_bytes(onnx_file.read_bytes()[:-83])  # as exported before digests existed
    assert verify_checksum(path) is False
    assert runtime.load(path).predict(np.full((64, 64, 3), 128, np.uint8), top_k=1)
