"""What an exported file carries besides its weights: how to preprocess an image, the class names, the model
name, the input layout and how it was quantized.

`effnet.export` writes it and `effnet.runtime` reads it, so a file is never fed differently from how the
model was trained. The same `ModelMetadata` is stored two ways:

- ``.onnx``: the model's ``metadata_props`` (string key/value pairs; tools such as Netron show them), lists
  and the preprocessing as JSON strings.
- ``.tflite``: a zip archive appended to the flatbuffer with ``effnet.json`` and ``labels.txt``, the same
  place TFLite Model Maker puts its label file (``unzip -l model.tflite`` lists them). The interpreter
  ignores bytes after the model, and a zip reader finds the archive from the end of the file.

numpy/Pillow-free and torch-free: only the standard library and `effnet.preprocessing`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from typing import Any

from effnet.preprocessing import Preprocessing

METADATA_VERSION = 1
LAYOUTS = ("NCHW", "NHWC")
OUTPUTS = ("logits", "features", "detections", "segmentation")
QUANTIZATIONS = ("none", "int8", "int16", "fp16", "dynamic")
TFLITE_METADATA_FILE = "effnet.json"
TFLITE_LABELS_FILE = "labels.txt"
_VERSION_KEY = "effnet_metadata_version"


def _producer() -> str:
    try:
        return f"effnet {package_metadata.version('effnet')}"
    except package_metadata.PackageNotFoundError:
        return "effnet"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the runtime needs to turn images into predictions with an exported file.

    ``input_layout`` is the layout of the file's input tensor: "NCHW" (ONNX, as in PyTorch) or "NHWC"
    (LiteRT, as on-device pipelines feed it). ``output`` is "logits" for a classifier, "features" for a
    backbone or embedding model, "segmentation" for per-pixel class logits [N, H, W, C] (see
    `effnet.runtime.segmentation`), "detections" for an object detector (``task`` is then "detection" and
    ``detection`` describes its four outputs and post-processing, see `effnet.runtime.detection`).
    ``labels`` is None when the exporter was given no class names.
    """

    model_name: str
    preprocessing: Preprocessing
    labels: tuple[str, ...] | None = None
    input_layout: str = "NCHW"
    output: str = "logits"
    quantization: str = "none"
    producer: str = field(default_factory=_producer)
    int8_format: str = (
        ""  # an int8 .onnx file's weight format ("portable" or "vnni"); "" elsewhere or unknown
    )
    detection: dict[str, Any] | None = None  # a detector's output layout and post-processing settings

    @property
    def task(self) -> str:
        """ "detection", "embedding" or "classification", from what the file outputs."""
        return {"detections": "detection", "features": "embedding", "segmentation": "segmentation"}.get(
            self.output, "classification"
        )

    def __post_init__(self) -> None:
        if self.input_layout not in LAYOUTS:
            raise ValueError(f"input_layout must be one of {LAYOUTS}, got {self.input_layout!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}")
        if (self.output == "detections") != (self.detection is not None):
            raise ValueError(
                "a detector's metadata (output 'detections') needs its 'detection' entry, and only it"
            )
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))

    def to_dict(self) -> dict[str, Any]:
        return {
            _VERSION_KEY: METADATA_VERSION,
            "model_name": self.model_name,
            "preprocessing": self.preprocessing.to_dict(),
            "labels": list(self.labels) if self.labels is not None else None,
            "input_layout": self.input_layout,
            "output": self.output,
            "quantization": self.quantization,
            "producer": self.producer,
            **({"int8_format": self.int8_format} if self.int8_format else {}),
            **({"task": self.task, "detection": self.detection} if self.detection is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "metadata") -> ModelMetadata:
        version = int(data.get(_VERSION_KEY, 0))
        if version > METADATA_VERSION:
            raise ValueError(
                f"{source}: effnet metadata version {version} is newer than this effnet reads "
                f"({METADATA_VERSION}); upgrade effnet"
            )
        try:
            return cls(
                model_name=str(data["model_name"]),
                preprocessing=Preprocessing.from_dict(data["preprocessing"]),
                labels=data.get("labels"),
                input_layout=data.get("input_layout", "NCHW"),
                output=data.get("output", "logits"),
                quantization=data.get("quantization", "none"),
                producer=data.get("producer", ""),
                int8_format=str(data.get("int8_format", "")),
                detection=dict(data["detection"]) if data.get("detection") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: damaged effnet metadata ({error}); re-export the model") from None

    # -- ONNX: metadata_props --------------------------------------------------------------------------------

    def to_onnx_props(self) -> dict[str, str]:
        """String key/value pairs for an ONNX model's ``metadata_props``."""
        props = {
            _VERSION_KEY: str(METADATA_VERSION),
            "model_name": self.model_name,
            "preprocessing": json.dumps(self.preprocessing.to_dict()),
            "input_layout": self.input_layout,
            "output": self.output,
            "quantization": self.quantization,
            "producer": self.producer,
        }
        if self.int8_format:
            props["int8_format"] = self.int8_format
        if self.labels is not None:
            props["labels"] = json.dumps(list(self.labels), ensure_ascii=False)
        if self.detection is not None:
            props["task"] = self.task
            props["detection"] = json.dumps(self.detection)
        return props

    @classmethod
    def from_onnx_props(cls, props: dict[str, str], source: str = "metadata") -> ModelMetadata | None:
        """Read what `to_onnx_props` wrote; None for a file without effnet metadata."""
        if _VERSION_KEY not in props:
            return None
        try:
            data: dict[str, Any] = dict(props)
            data["preprocessing"] = json.loads(props["preprocessing"])
            data["labels"] = json.loads(props["labels"]) if "labels" in props else None
            data["detection"] = json.loads(props["detection"]) if "detection" in props else None
        except (KeyError, json.JSONDecodeError) as error:
            raise ValueError(f"{source}: damaged effnet metadata ({error}); re-export the model") from None
        return cls.from_dict(data, source)


# -- LiteRT: a zip appended to the flatbuffer ----------------------------------------------------------------


def append_tflite_metadata(path: str | os.PathLike, metadata: ModelMetadata) -> None:
    """Append ``effnet.json`` (and ``labels.txt`` when there are labels) to a .tflite file, as a zip.
    ``effnet.json`` also holds the SHA-256 of the model bytes before the zip (`effnet.runtime.checksum`)."""
    from effnet.runtime.checksum import TFLITE_KEY, file_sha256, tflite_model_length

    data = {**metadata.to_dict(), TFLITE_KEY: file_sha256(path, tflite_model_length(path))}
    with zipfile.ZipFile(path, mode="a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(TFLITE_METADATA_FILE, json.dumps(data, indent=1, ensure_ascii=False))
        if metadata.labels is not None:
            archive.writestr(TFLITE_LABELS_FILE, "\n".join(metadata.labels) + "\n")


def read_tflite_metadata(path: str | os.PathLike) -> ModelMetadata | None:
    """The metadata `append_tflite_metadata` wrote; None for a .tflite file without it."""
    source = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if TFLITE_METADATA_FILE not in archive.namelist():
                return None
            text = archive.read(TFLITE_METADATA_FILE).decode("utf-8")
    except zipfile.BadZipFile:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: damaged effnet metadata ({error}); re-export the model") from None
    return ModelMetadata.from_dict(data, source)
