"""Running exported models: ``effnet.runtime.load("model.tflite").predict("cat.jpg")``.

A `Predictor` reads the preprocessing and class names that `effnet.export` stored in the file, so an image is
prepared exactly as in training. ``.onnx`` files run on ONNX Runtime, ``.tflite`` files on the LiteRT
interpreter (ai-edge-litert), ``.rknn`` files in rknn-toolkit2's simulator (`effnet.runtime.rknn_engine`).
This package needs numpy, Pillow and the engine, not torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from effnet.preprocessing import Preprocessing
from effnet.runtime.checksum import verify_checksum
from effnet.runtime.errors import ModelFileError
from effnet.runtime.metadata import ModelMetadata
from effnet.runtime.predictor import Prediction, Predictor, TensorSpec, softmax

SUFFIXES = (".onnx", ".tflite", ".rknn")

__all__ = [
    "SUFFIXES",
    "ModelFileError",
    "ModelMetadata",
    "Prediction",
    "Predictor",
    "TensorSpec",
    "load",
    "softmax",
]


def load(
    path: str | os.PathLike,
    num_threads: int | None = None,
    preprocessing: Preprocessing | None = None,
    labels: Sequence[str] | None = None,
    verify: bool = True,
) -> Predictor:
    """A `Predictor` for an exported ``.onnx`` or ``.tflite`` file.

    ``num_threads``: CPU threads for the engine (None: every core this process may use).
    ``preprocessing`` / ``labels``: override what the file's metadata says (needed only for files not
    exported by effnet, which carry none).

    ``verify``: check the SHA-256 of the model bytes that effnet's export stored in the file
    (`effnet.runtime.checksum`; files without one load unchecked). It reads the file once (milliseconds).

    Raises FileNotFoundError for a missing file and `ModelFileError` (a ValueError) for a file that is empty,
    truncated, not a model, of another kind, or changed after export; all name the file.
    """
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such model file; check the path")
    if file.is_dir():
        raise ModelFileError(str(file), "is a folder", "pass the .onnx or .tflite file inside it")
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelFileError(
            str(file),
            f"unknown model file type {suffix or '(no extension)'!r}",
            "expected a .onnx (ONNX Runtime), .tflite (LiteRT) or .rknn (Rockchip NPU) file exported by "
            "effnet.export",
        )
    if file.stat().st_size == 0:
        raise ModelFileError(str(file), "empty file (0 bytes)", "re-export the model")
    if suffix == ".rknn":  # run by rknn-toolkit2's simulator, rebuilt from the folder the export keeps
        from effnet.runtime.rknn_engine import RknnPredictor

        return RknnPredictor(file)
    if verify:
        verify_checksum(file)
    if suffix == ".onnx":
        from effnet.runtime.onnx_engine import OnnxPredictor

        return OnnxPredictor(file, num_threads, preprocessing, labels)
    from effnet.runtime.tflite_engine import TFLitePredictor

    return TFLitePredictor(file, num_threads, preprocessing, labels)
