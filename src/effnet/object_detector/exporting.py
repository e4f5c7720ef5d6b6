"""Exporting a trained detector (Model Maker's ``ObjectDetector.export``) and evaluating an exported file
(``evaluate_tflite``): thin layers over `effnet.export.detection.export_detector` and `effnet.runtime`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from effnet.checkpoint import write_text
from effnet.object_detector.evaluation import Detections, coco_metrics

log = logging.getLogger(__name__)
FORMATS = ("tflite", "onnx", "label", "saved_model", "checkpoint")
MODEL_MAKER_OPTIONS = ("with_metadata", "export_metadata_json_file", "vocab_filename", "tfjs_folder_name")


def _formats(export_format: str | Sequence[str] | None) -> list[str]:
    if export_format is None:
        return ["tflite", "label"]
    names = [export_format] if isinstance(export_format, str) else list(export_format)
    result = []
    for name in names:
        name = str(getattr(name, "value", name)).lower()
        if name not in FORMATS:
            raise ValueError(f"export_format {name!r}: effnet writes {', '.join(FORMATS)}")
        result.append(name)
    return result


def _quantization(detector, quantization_config: Any, representative_data: Any) -> tuple[Any, Any]:
    """(quantization for `export_detector`, representative images): "default" is int8 calibrated on the
    training data, as Model Maker exports detectors."""
    images = representative_data if representative_data is not None else detector.train_data
    if isinstance(quantization_config, str) and quantization_config == "default":
        if images is None:
            raise ValueError(
                "export: the default int8 file is calibrated on the training data, which a loaded detector "
                "does not have; pass representative_data=DataLoader..., or quantization_config=None for a "
                "float32 file"
            )
        return "int8", images
    return quantization_config, images


def export_detector(
    detector,
    export_dir: str | os.PathLike | None = None,
    tflite_filename: str = "model.tflite",
    label_filename: str = "labels.txt",
    saved_model_filename: str = "saved_model",
    export_format: str | Sequence[str] | None = None,
    quantization_config: Any = "default",
    onnx_filename: str = "model.onnx",
    representative_data: Any = None,
    **model_maker_options: Any,
) -> dict[str, Path]:
    """Write the exported files into ``export_dir``; returns ``{format: path}``.

    ``export_format``: one of or a list of ``tflite``, ``onnx``, ``label``, ``saved_model`` / ``checkpoint``
    (the run folder); default tflite + label. ``quantization_config``: "default" (int8, calibrated on the
    training data, float post-processing), None (float32), "fp16", or a `QuantizationConfig`. The file holds
    the post-processing `ObjectDetector.evaluate` runs (``detector.postprocessing``: score and IoU
    thresholds, ``max_detections``, by default ``model_spec.tflite_max_detections``), with its outputs in the
    TFLite detection layout (boxes, classes, scores, count). Model Maker's ``with_metadata`` and
    ``export_metadata_json_file`` are accepted (effnet's files always carry their metadata).
    """
    unknown = sorted(set(model_maker_options) - set(MODEL_MAKER_OPTIONS))
    if unknown:
        raise TypeError(f"export() got unknown arguments {unknown}")
    from effnet.export.detection import export_detector as export_file

    formats = _formats(export_format)
    folder = Path(export_dir) if export_dir is not None else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name in formats:
        if name in ("tflite", "onnx"):
            quantization, images = _quantization(detector, quantization_config, representative_data)
            path = folder / (tflite_filename if name == "tflite" else onnx_filename)
            written[name] = export_file(
                detector.network,
                path,
                format=name,
                quantization=quantization,
                representative_images=images,
                labels=detector.label_names,
                **detector.postprocessing,
            )
        elif name == "label":
            write_text(folder / label_filename, "\n".join(detector.label_names) + "\n")
            written[name] = folder / label_filename
        else:
            written[name] = detector.save(folder / saved_model_filename)
    return written


def evaluate_exported(path: str | os.PathLike, data) -> dict[str, float]:
    """COCO metrics of an exported detector file on ``data`` (each image run alone, as an app runs it;
    an image that cannot be decoded is left out, as `ObjectDetector.evaluate` does)."""
    from effnet.data.images import ImageDecodeError
    from effnet.runtime import load

    predictor = load(path)
    found, ids = [], []
    for index, sample in enumerate(data.samples):
        try:
            objects = predictor.detect(sample.path, score_threshold=0.0)
        except ImageDecodeError as error:
            log.warning("%s", error)
            continue
        boxes = np.asarray([item["box"] for item in objects], np.float32).reshape(-1, 4)
        scores = np.asarray([item["score"] for item in objects], np.float32)
        found.append(Detections(boxes, scores, np.asarray([item["index"] for item in objects], np.int64)))
        ids.append(index)
    return coco_metrics(data.to_coco_dict(), found, ids, data.label_names)
