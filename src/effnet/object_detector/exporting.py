"""Exporting a trained detector (Model Maker's ``ObjectDetector.export``) and evaluating an exported file
(``evaluate_tflite``): thin layers over `effnet.export.detection.export_detector` and `effnet.runtime`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from effnet.export.task_files import export_task_files
from effnet.object_detector.evaluation import Detections, coco_metrics

log = logging.getLogger(__name__)
MODEL_MAKER_OPTIONS = ("with_metadata", "export_metadata_json_file", "vocab_filename", "tfjs_folder_name")


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


def export_detector(detector, *args: Any, **kwargs: Any) -> dict[str, Path]:
    """Write the exported files into ``export_dir``; returns ``{format: path}``. The arguments are Model
    Maker's (``export_dir``, ``tflite_filename``, ``label_filename``, ``saved_model_filename``,
    ``export_format``, ``quantization_config``, ``onnx_filename``, ``representative_data``; see
    `effnet.export.task_files.export_task_files`).

    ``export_format``: one of or a list of ``tflite``, ``onnx``, ``label``, ``saved_model`` / ``checkpoint``
    (the run folder); default tflite + label. ``quantization_config``: "default" (int8, calibrated on the
    training data or on ``representative_data``, float post-processing), None (float32), "fp16", or a
    `QuantizationConfig`. The file holds the post-processing `ObjectDetector.evaluate` runs
    (``detector.postprocessing``: score and IoU thresholds, ``max_detections``, by default
    ``model_spec.tflite_max_detections``), with its outputs in the TFLite detection layout (boxes, classes,
    scores, count). Model Maker's ``with_metadata`` and ``export_metadata_json_file`` are accepted (effnet's
    files always carry their metadata).
    """
    from effnet.export.detection import export_detector as export_file

    def write_model(name: str, path: Path, quantization_config: Any, representative_data: Any) -> Path:
        quantization, images = _quantization(detector, quantization_config, representative_data)
        return export_file(
            detector.network,
            path,
            format=name,
            quantization=quantization,
            representative_images=images,
            labels=detector.label_names,
            **detector.postprocessing,
        )

    return export_task_files(detector, write_model, *args, accepted_options=MODEL_MAKER_OPTIONS, **kwargs)


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
