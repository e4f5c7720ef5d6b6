"""Model Maker's ``model.export(...)``: the .tflite and/or .onnx file, labels.txt and the saved model."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effnet.checkpoint import write_text
from effnet.validation import check_keywords

if TYPE_CHECKING:
    from effnet.image_classifier.classifier import ImageClassifier


class ExportFormat:
    """Model Maker's export format names (TFLITE, SAVED_MODEL, LABEL, VOCAB, TFJS), and effnet's ONNX and
    CHECKPOINT. VOCAB and TFJS exist so that Model Maker code names them; exporting them is a ValueError
    that says what to use instead."""

    TFLITE = "tflite"
    ONNX = "onnx"
    RKNN = "rknn"  # Rockchip NPU (rknn-toolkit2, its own environment: `make rknn-env`)
    LABEL = "label"
    SAVED_MODEL = "saved_model"  # effnet writes its own checkpoint folder (weights, labels, config)
    CHECKPOINT = "checkpoint"
    VOCAB = "vocab"
    TFJS = "tfjs"


FORMATS = ("tflite", "onnx", "rknn", "label", "saved_model", "checkpoint")
DEFAULT_FORMATS = ("tflite", "label")
NOT_SUPPORTED = {
    "tfjs": "export_format TFJS is not supported (effnet does not convert to TensorFlow.js): use "
    "ExportFormat.ONNX (onnxruntime-web runs it in a browser) or ExportFormat.TFLITE (tfjs-tflite runs it)",
    "vocab": "export_format VOCAB is not supported (a vocabulary belongs to a text model): use "
    "ExportFormat.LABEL for the classifier's labels.txt",
}
# Model Maker's export() options effnet takes where their value is what effnet does anyway: (that value, the
# error for another)
MODEL_MAKER_OPTIONS = {
    "with_metadata": (
        True,
        "with_metadata=False is not supported: effnet's .tflite and .onnx files always "
        "carry their metadata (labels, preprocessing); use them as they are",
    ),
    "export_metadata_json_file": (
        False,
        "export_metadata_json_file=True is not supported: the metadata is "
        "inside the exported file; use effnet.runtime.load(path).metadata to read it",
    ),
}


def _requested(export_format: str | Sequence[str] | None) -> list[str]:
    """The format names asked for, lower case (``ExportFormat.TFLITE`` and "tflite" alike)."""
    if export_format is None:
        return list(DEFAULT_FORMATS)
    names = [export_format] if isinstance(export_format, str) else list(export_format)
    return [str(getattr(name, "value", name)).lower().removeprefix("exportformat.") for name in names]


def _formats(export_format: str | Sequence[str] | None) -> list[str]:
    result = []
    for key in _requested(export_format):
        if key in NOT_SUPPORTED:
            raise ValueError(NOT_SUPPORTED[key])
        if key not in FORMATS:
            raise ValueError(f"unknown export_format {key!r}; choose from {', '.join(FORMATS)}")
        result.append("checkpoint" if key == "saved_model" else key)
    return list(dict.fromkeys(result))


def saved_model_note(folder: Path) -> str:
    """What `ExportFormat.SAVED_MODEL` wrote instead of a TensorFlow SavedModel, and why."""
    return (
        f"effnet: ExportFormat.SAVED_MODEL wrote {folder}/ as effnet's own run folder (model.safetensors, "
        "labels.txt, config.json), not a TensorFlow SavedModel: effnet does not use TensorFlow; load it "
        f"with image_classifier.load({str(folder)!r}), or export TFLITE / ONNX for other runtimes"
    )


def _quantization(
    classifier: ImageClassifier, quantization_config: Any, representative_data: Any, target: str
):
    """Model Maker's "default": full-integer int8 calibrated on the training data (uint8 I/O in .tflite)."""
    from effnet.export import QuantizationConfig

    if quantization_config != "default":
        return quantization_config
    data = representative_data if representative_data is not None else getattr(classifier, "train_data", None)
    if data is None:
        raise ValueError(
            "the default int8 export calibrates on the training images, which a loaded model does not have; "
            "pass representative_data=DataLoader.from_folder(...) (a few hundred training images), "
            "or quantization_config=None for a float file"
        )
    if target == "onnx":  # ONNX int8 files keep float input and output (QDQ)
        return QuantizationConfig.for_int8(
            data, inference_input_type="float32", inference_output_type="float32"
        )
    return QuantizationConfig.for_int8(data)


def _rknn_quantization(
    classifier: ImageClassifier, quantization_config: Any, representative_data: Any
) -> tuple[str, Any, dict[str, Any]]:
    """(mode, calibration images, options) of a .rknn file: "default" is int8 on the training images; None
    is fp16 (the NPU has no float32); a `QuantizationConfig` or a mode name ("int8", "int16", "fp16")
    otherwise."""
    from effnet.export import QuantizationConfig

    if quantization_config == "default":
        quantization_config = _quantization(classifier, "default", representative_data, "onnx")
    if quantization_config is None:
        return "fp16", representative_data, {}
    if isinstance(quantization_config, str):
        quantization_config = QuantizationConfig(quantization_config, representative_data)
    mode = quantization_config.mode
    data = quantization_config.representative_data
    if data is None:
        data = representative_data
    if data is None:
        data = getattr(classifier, "train_data", None)
    return mode, data, {"quantization_steps": quantization_config.quantization_steps}


def _check_options(options: dict[str, Any]) -> None:
    """Model Maker's ``with_metadata`` / ``export_metadata_json_file`` where they match what effnet does; any
    other name is a TypeError naming the closest argument of `export_classifier`."""
    valid = [*inspect.signature(export_classifier).parameters][1:-1] + list(MODEL_MAKER_OPTIONS)
    check_keywords("export", options, valid)
    for name, value in options.items():
        supported, message = MODEL_MAKER_OPTIONS[name]
        if value != supported:
            raise ValueError(message)


def export_classifier(
    classifier: ImageClassifier,
    export_dir: str | os.PathLike | None = None,
    tflite_filename: str = "model.tflite",
    label_filename: str = "labels.txt",
    vocab_filename: str | None = None,
    saved_model_filename: str = "saved_model",
    export_format: str | Sequence[str] | None = None,
    quantization_config: Any = "default",
    onnx_filename: str = "model.onnx",
    representative_data: Any = None,
    tfjs_folder_name: str = "tfjs",
    rknn_filename: str = "model.rknn",
    target: str = "rk3588",
    rknn_algorithm: str = "normal",
    **model_maker_options: Any,
) -> dict[str, Path]:
    """Write the exported files; returns ``{format: path}``.

    ``export(export_dir, ...)`` writes into a folder. The classic ``export("model.tflite", "labels.txt")``
    form (file names as the first two arguments) works too. ``export_format``: one of or a list of
    ``tflite``, ``onnx``, ``rknn``, ``label``, ``saved_model``/``checkpoint``; default tflite + label.
    ``quantization_config``: "default" (int8, calibrated on the training data), None (float32), or a
    `QuantizationConfig` (``for_int8``, ``for_float16``, ``for_dynamic``). ``vocab_filename`` and
    ``tfjs_folder_name`` name files of formats effnet does not write; Model Maker's ``with_metadata=True``
    and ``export_metadata_json_file=False`` are accepted (effnet's files always carry their metadata).
    ``rknn`` (Rockchip NPU, `effnet.export.rknn`): for ``target`` (rk3588, rk3576, rk3568, rk3566, rk3562,
    rv1103, rv1106, rv1126b); "default" quantization is int8 on the training images, None fp16, a
    `QuantizationConfig` of mode int8 / int16 / fp16 that mode; ``rknn_algorithm``: the toolkit's
    calibration algorithm (normal, mmse, kl).
    Another keyword argument is a TypeError that names the closest valid one.
    """
    _check_options(model_maker_options)
    formats = _formats(export_format)
    from effnet.export import export_onnx, export_tflite

    if export_dir is not None and str(export_dir).endswith(".tflite"):  # export("x.tflite", "labels.txt")
        tflite_path = Path(export_dir)
        label_path = (
            Path(tflite_filename)
            if str(tflite_filename).endswith(".txt")
            else tflite_path.with_name(label_filename)
        )
        folder = tflite_path.parent
    else:
        folder = Path(export_dir) if export_dir is not None else Path.cwd()
        tflite_path, label_path = folder / tflite_filename, folder / label_filename
    folder.mkdir(parents=True, exist_ok=True)
    labels = classifier.index_to_label
    written: dict[str, Path] = {}
    for name in formats:
        if name == "tflite":
            quantization = _quantization(classifier, quantization_config, representative_data, "tflite")
            # the ExportedPath itself: its .check (what the export measured) is what `effnet export` prints
            written[name] = export_tflite(classifier.network, tflite_path, quantization, labels=labels)
        elif name == "onnx":
            quantization = _quantization(classifier, quantization_config, representative_data, "onnx")
            written[name] = export_onnx(
                classifier.network, folder / onnx_filename, quantization, labels=labels
            )
        elif name == "rknn":
            from effnet.export.rknn import export_rknn

            mode, data, options = _rknn_quantization(classifier, quantization_config, representative_data)
            written[name] = export_rknn(
                classifier.network,
                folder / rknn_filename,
                mode,
                target,
                data,
                rknn_algorithm,
                labels=labels,
                **options,
            )
        elif name == "label":
            write_text(label_path, "\n".join(labels) + "\n")
            written[name] = label_path
        else:
            written[name] = classifier.save(folder / saved_model_filename)
            if "saved_model" in _requested(export_format):
                print(saved_model_note(written[name]), file=sys.stderr)
    return written
