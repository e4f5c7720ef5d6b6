"""Exporting a trained segmenter (``ImageSegmenter.export``) and evaluating an exported file
(``evaluate_tflite``): the network in an export wrapper (per-pixel logits, channels last) through
`effnet.export.export_onnx` / `export_tflite`, and `effnet.runtime`'s ``segment``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.export.checks import CHECK_IMAGES
from effnet.export.task_files import export_task_files

log = logging.getLogger(__name__)
MODEL_MAKER_OPTIONS = ("with_metadata", "export_metadata_json_file")
CALIBRATION_IMAGES = 200  # int8: calibration + check images drawn from the training data


class SegmentationExport(nn.Module):
    """What an exported file computes: per-pixel class logits [N, S, S, C], channels last, so that the class
    axis is the last one in both engines (the export check's agreement is then per pixel) and the runtime
    reads one layout. ``export_output = "segmentation"`` marks the file's metadata
    (`effnet.runtime.segmentation`)."""

    export_output = "segmentation"

    def __init__(self, network: nn.Module, labels: Sequence[str]) -> None:
        super().__init__()
        self.network = network
        self.name = network.name
        self.num_classes = network.num_classes
        self.labels = list(labels)
        self.preprocessing = network.preprocessing.with_size(network.input_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images).permute(0, 2, 3, 1)


def calibration_arrays(segmenter, data, limit: int = CALIBRATION_IMAGES) -> np.ndarray:
    """Up to ``limit`` images of ``data`` (a `SegmentationData`, drawn with a fixed seed), preprocessed as the
    network sees them: float32 (N, 3, S, S)."""
    from effnet.image_segmenter.samples import ResizedSegmentation
    from effnet.training.samples import normalize

    samples = data.samples
    if len(samples) > limit:
        order = np.random.default_rng(0).permutation(len(samples))[:limit]
        data = type(data)([samples[i] for i in sorted(order)], data.label_names)
    images = ResizedSegmentation(
        data, segmenter.input_size, segmenter.preprocessing.interpolation, "calibration images", False, False
    )
    return normalize(images.images, segmenter.preprocessing).numpy()


def _quantization(segmenter, quantization_config: Any, representative_data: Any, target: str) -> tuple:
    """(quantization, representative arrays or None): "default" / "int8" is int8 calibrated on the training
    data (Model Maker's default); ONNX int8 keeps float input and output (QDQ), .tflite takes uint8 input
    and gives uint8 logits."""
    from effnet.export import QuantizationConfig

    data = representative_data if representative_data is not None else segmenter.train_data
    arrays = calibration_arrays(segmenter, data) if data is not None and hasattr(data, "samples") else data
    if isinstance(quantization_config, str) and quantization_config in ("default", "int8"):
        if arrays is None:
            raise ValueError(
                "export: the int8 file is calibrated on the training data, which a loaded segmenter does not "
                "have; pass representative_data=DataLoader.from_folder(...), or quantization_config=None for "
                "a float32 file"
            )
        # the last CHECK_IMAGES are held out: the export's check then measures images it did not calibrate on
        steps = len(arrays) - CHECK_IMAGES if len(arrays) >= 2 * CHECK_IMAGES else len(arrays)
        if target == "onnx":
            return QuantizationConfig.for_int8(
                arrays, steps, inference_input_type="float32", inference_output_type="float32"
            ), arrays
        return QuantizationConfig.for_int8(arrays, steps), arrays
    return quantization_config, arrays


def export_segmenter(segmenter, *args: Any, **kwargs: Any) -> dict[str, Path]:
    """Write the exported files into ``export_dir``; returns ``{format: path}``. The arguments are Model
    Maker's (``export_dir``, ``tflite_filename``, ``label_filename``, ``saved_model_filename``,
    ``export_format``, ``quantization_config``, ``onnx_filename``, ``representative_data``; see
    `effnet.export.task_files.export_task_files`).

    ``export_format``: one of or a list of ``tflite``, ``onnx``, ``label``, ``saved_model`` / ``checkpoint``
    (the run folder); default tflite + label. ``quantization_config``: "default" or "int8" (int8 calibrated
    on the training data, or on ``representative_data``, a `SegmentationData`), None (float32), "fp16", or a
    `QuantizationConfig`. Each file holds the labels and preprocessing, outputs per-pixel logits [1, S, S, C]
    and was checked against PyTorch before it was moved into place (``path.check``: its pixel agreement).
    """
    from effnet.export import export_onnx, export_tflite

    wrapped = SegmentationExport(segmenter.network, segmenter.label_names)

    def write_model(name: str, path: Path, quantization_config: Any, representative_data: Any) -> Path:
        quantization, arrays = _quantization(segmenter, quantization_config, representative_data, name)
        export = export_tflite if name == "tflite" else export_onnx
        return export(wrapped, path, quantization, arrays)

    return export_task_files(
        segmenter,
        write_model,
        *args,
        accepted_options=MODEL_MAKER_OPTIONS,
        saved_model_as="checkpoint",
        **kwargs,
    )


def evaluate_exported(path: str | os.PathLike, data) -> dict[str, float]:
    """mIoU, pixel accuracy and IoU per class of an exported segmenter file on ``data``, each image run
    alone (as an app runs it) and scored at its own size, as `ImageSegmenter.evaluate` scores."""
    from effnet.data.images import ImageDecodeError
    from effnet.data.segmentation import MaskError
    from effnet.image_segmenter.metrics import confusion_matrix, segmentation_metrics
    from effnet.runtime import load

    predictor = load(path)
    if predictor.labels is not None and list(predictor.labels) != list(data.label_names):
        raise ValueError(
            f"{path}: the file's labels {list(predictor.labels)[:5]} differ from the data's "
            f"{data.label_names[:5]}; evaluate on data with the same label map"
        )
    confusion = np.zeros((data.num_classes,) * 2, dtype=np.int64)
    for sample in data.samples:
        try:
            mask = sample.mask()
            labels = predictor.segment(sample.path)
        except (ImageDecodeError, MaskError) as error:
            log.warning("%s", error)
            continue
        confusion += confusion_matrix(labels, mask, data.num_classes)
    return segmentation_metrics(confusion, data.label_names)
