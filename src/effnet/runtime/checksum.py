"""A SHA-256 of an exported file's model bytes, stored inside the file by `effnet.export` and checked by
`effnet.runtime.load`: a file changed after export (a flipped bit in the weights, a bad copy) is an error,
not a model that quietly predicts something else.

The digest travels inside the file, so copying the one file keeps it:

- ``.onnx``: the last ``metadata_props`` entry, ``effnet_sha256``, over every byte before it. A protobuf
  message may end with more entries of a repeated field, so the sealed file is still a plain ONNX model
  (ONNX Runtime, Netron and ``onnx.load`` read it), and the entry has a fixed length, so reading it back needs
  no protobuf parser.
- ``.tflite``: ``model_sha256`` in the ``effnet.json`` of the zip appended to the flatbuffer
  (`effnet.runtime.metadata`), over every byte before the zip.

Files without a digest (exported by an older effnet, or by another tool) load unchecked.
Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

from effnet.runtime.errors import ModelFileError

ONNX_KEY = b"effnet_sha256"
TFLITE_KEY = "model_sha256"
_FIX = "re-export the model, or pass verify=False to load it anyway"
_CHUNK = 1 << 20

# metadata_props is ModelProto field 14 (wire type 2: tag 0x72); the entry (StringStringEntryProto) is key
# (field 1, tag 0x0a) and value (field 2, tag 0x12): 64 hex digits.
_ENTRY = b"\x0a" + bytes([len(ONNX_KEY)]) + ONNX_KEY + b"\x12\x40"
_ONNX_PREFIX = b"\x72" + bytes([len(_ENTRY) + 64]) + _ENTRY
_ONNX_TRAILER_SIZE = len(_ONNX_PREFIX) + 64


def file_sha256(path: str | os.PathLike, length: int | None = None) -> str:
    """Hex SHA-256 of the first ``length`` bytes of a file (all of it when None), read in 1 MiB pieces."""
    digest = hashlib.sha256()
    remaining = os.path.getsize(path) if length is None else length
    with open(path, "rb") as file:
        while remaining > 0:
            piece = file.read(min(_CHUNK, remaining))
            if not piece:
                break
            digest.update(piece)
            remaining -= len(piece)
    return digest.hexdigest()


def tflite_model_length(path: str | os.PathLike) -> int:
    """Bytes of a .tflite file before any zip appended to it: what its digest covers."""
    try:
        with zipfile.ZipFile(path) as archive:
            return min((info.header_offset for info in archive.infolist()), default=os.path.getsize(path))
    except (zipfile.BadZipFile, OSError):
        return os.path.getsize(path)


def seal_onnx(path: str | os.PathLike) -> str:
    """Append the ``effnet_sha256`` metadata entry (the digest of the file as it is) to a saved .onnx file;
    returns the digest."""
    digest = file_sha256(path)
    with open(path, "ab") as file:
        file.write(_ONNX_PREFIX + digest.encode("ascii"))
    return digest


def verify_checksum(path: str | os.PathLike) -> bool:
    """Check the digest an effnet export stored in ``path``. True when it matched, False when the file holds
    none; raises `ModelFileError` naming the file when the model bytes changed after export."""
    file = Path(path)
    if file.suffix.lower() == ".onnx":
        stored, length = _onnx_digest(file)
    else:
        stored, length = _tflite_digest(file)
    if stored is None:
        return False
    if file_sha256(file, length) != stored:
        raise ModelFileError(str(file), "checksum mismatch: file changed after export", _FIX)
    return True


def _onnx_digest(file: Path) -> tuple[str | None, int]:
    size = file.stat().st_size
    with open(file, "rb") as handle:
        handle.seek(max(0, size - _ONNX_TRAILER_SIZE))
        tail = handle.read()
    if len(tail) == _ONNX_TRAILER_SIZE and tail.startswith(_ONNX_PREFIX):
        return tail[len(_ONNX_PREFIX) :].decode("ascii", "replace"), size - _ONNX_TRAILER_SIZE
    if len(tail) == _ONNX_TRAILER_SIZE and _nearly_the_entry(tail):
        # the entry is there but a byte of its framing changed: the file changed after export
        raise ModelFileError(str(file), "checksum mismatch: file changed after export", _FIX)
    return None, size


def _nearly_the_entry(tail: bytes) -> bool:
    """A trailer with 64 hex digits whose framing differs from ours in a byte or two (a damaged entry), not
    the end of a file that never had one."""
    prefix, digits = tail[: len(_ONNX_PREFIX)], tail[len(_ONNX_PREFIX) :]
    differing = sum(a != b for a, b in zip(prefix, _ONNX_PREFIX, strict=True))
    return differing <= 2 and all(c in b"0123456789abcdef" for c in digits)


def _tflite_digest(file: Path) -> tuple[str | None, int]:
    from effnet.runtime.metadata import TFLITE_METADATA_FILE

    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError):
        return None, 0  # no zip appended: a file without effnet metadata, loaded unchecked
    with archive:
        if TFLITE_METADATA_FILE not in archive.namelist():
            return None, 0
        try:
            data = json.loads(archive.read(TFLITE_METADATA_FILE).decode("utf-8"))
        except (zipfile.BadZipFile, ValueError, OSError, zlib.error) as error:  # bad CRC, broken JSON ...
            raise ModelFileError(
                str(file), f"checksum mismatch: file changed after export (its metadata: {error})", _FIX
            ) from None
        start = min(info.header_offset for info in archive.infolist())
    stored = data.get(TFLITE_KEY) if isinstance(data, dict) else None
    return (str(stored), start) if stored else (None, 0)
