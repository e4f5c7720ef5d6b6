"""The self-check of a detector file (`effnet.export.detection`): its detections against PyTorch's.

A float file must find the same objects: every detection that rounding-sized differences cannot move
(scoring `STABLE_MARGIN` above the last candidate that entered NMS, and above the last row of a full
output) is matched (same class, IoU >= `MATCH_IOU`) in at least `FLOAT_AGREEMENT` of cases, with median
box and score differences within `BOX_TOLERANCE`; otherwise the export fails and writes nothing. A
quantized file reports its agreement on the detections scoring >= `REPORT_SCORE` (what an application
shows) and warns below `AGREEMENT_WARNING`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.export.checks import ExportCheckError, ExportData
from effnet.runtime.predictor import Predictor

log = logging.getLogger("effnet.export")

# A float file's matched boxes (0..1 of the image) and scores differ from PyTorch's by at most this, typically
# (the median): two candidates of one class whose scores differ by rounding may swap in NMS, which moves a
# few matches a lot and the median not at all.
BOX_TOLERANCE = 1e-3
FLOAT_AGREEMENT = 0.98  # a float file's detections: an IoU within rounding of the threshold may flip a few
# A float file is compared on the detections scoring this much above the lowest candidate that entered NMS
# (and above the last row of a full output): below, rounding-sized differences may trade candidates.
STABLE_MARGIN = 1e-3
AGREEMENT_WARNING = 0.8
MATCH_IOU = 0.5
REPORT_SCORE = 0.3  # a quantized file's agreement counts the detections an application would show


@dataclass(frozen=True)
class DetectionExportCheck:
    """What a detector file's self-check measured against PyTorch on ``num_inputs`` ``inputs``.

    ``agreement``: detections found by both (same class, IoU >= `MATCH_IOU`) over the mean number each
    found (1.0 when neither found any), counting detections scoring >= ``score_threshold``.
    ``box_diff`` / ``score_diff``: the median difference between matched detections (the largest of the
    four box coordinates each), ``max_box_diff`` / ``max_score_diff`` the largest (box
    coordinates in 0..1 of the image)."""

    format: str
    quantization: str
    inputs: str
    num_inputs: int
    agreement: float
    compared: int
    box_diff: float
    score_diff: float
    max_box_diff: float
    max_score_diff: float
    score_threshold: float
    file_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.format} ({self.quantization}): detections agree with PyTorch {self.agreement:.3f} "
            f"({self.compared} PyTorch detections scoring >= {self.score_threshold:g} on {self.num_inputs} "
            f"{self.inputs}), |box diff| median {self.box_diff:.3g} max {self.max_box_diff:.3g}, "
            f"|score diff| median {self.score_diff:.3g} max {self.max_score_diff:.3g}, "
            f"{self.file_bytes / 1e6:.2f} MB"
        )


def reference_detections(full: nn.Module, images: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """PyTorch's (boxes, classes, scores, count) for preprocessed images (N, 3, S, S), run one at a time as
    the files run, and per image the lowest score whose detections cannot change with rounding-sized
    differences (`stable_scores`)."""
    outputs: list[list[np.ndarray]] = [[], [], [], []]
    stable = []
    post = full.postprocess
    with torch.inference_mode():
        for image in images:
            class_logits, box_deltas = full.detector(torch.from_numpy(np.ascontiguousarray(image[None])))
            found = post(class_logits, box_deltas)
            for k, value in enumerate(found):
                outputs[k].append(value.float().numpy())
            scores = torch.sigmoid(class_logits.float()).flatten()
            k = min(post.pre_nms_top_k, scores.numel())
            cut = float(torch.topk(scores, k).values[-1])  # the last candidate that entered NMS
            count, last = int(found[3][0]), float(found[2][0, -1])
            if count == post.max_detections:  # a full output: the lowest rows may trade places
                cut = max(cut, last)
            stable.append(cut + STABLE_MARGIN)
    return tuple(np.concatenate(values) for values in outputs), np.asarray(stable)


def compare_detections(
    expected: Sequence[np.ndarray], got: Sequence[np.ndarray], score_threshold: float | np.ndarray
) -> tuple[float, int, float, float, float, float]:
    """(agreement, detections compared, median box diff, median score diff, max box diff, max score diff)
    of two sets of detector outputs (see `DetectionExportCheck`), counting detections scoring at least
    ``score_threshold`` (one number, or one per image) in each. Detections are matched per image, highest
    score first, to the unmatched one of the same class with the largest IoU (at least `MATCH_IOU`)."""
    thresholds = np.broadcast_to(np.asarray(score_threshold, np.float64), (len(expected[3]),))
    matched = total_expected = total_got = 0
    box_diffs, score_diffs = [0.0], [0.0]
    for image in range(len(expected[3])):
        a = _rows(expected, image, thresholds[image])
        b = _rows(got, image, thresholds[image])
        total_expected += len(a[0])
        total_got += len(b[0])
        free = np.ones(len(b[0]), bool)
        for box, label, score in zip(*a, strict=True):
            candidates = free & (b[1] == label)
            if not candidates.any():
                continue
            overlaps = np.where(candidates, _iou(box, b[0]), -1.0)
            best = int(overlaps.argmax())
            if overlaps[best] < MATCH_IOU:
                continue
            free[best] = False
            matched += 1
            box_diffs.append(float(np.abs(box - b[0][best]).max()))
            score_diffs.append(abs(float(score) - float(b[2][best])))
    mean = (total_expected + total_got) / 2
    agreement = matched / mean if mean else 1.0
    if matched:
        box_diffs, score_diffs = box_diffs[1:], score_diffs[1:]
    diffs = (float(np.median(box_diffs)), float(np.median(score_diffs)), max(box_diffs), max(score_diffs))
    return agreement, total_expected, *diffs


def _rows(outputs: Sequence[np.ndarray], image: int, score_threshold: float):
    boxes, classes, scores, count = outputs
    n = round(float(count[image]))
    keep = scores[image, :n] >= score_threshold
    return boxes[image, :n][keep], np.rint(classes[image, :n][keep]), scores[image, :n][keep]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (ymin, xmin, ymax, xmax) box with each of ``boxes``."""
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
    area = np.clip(box[2:] - box[:2], 0, None).prod()
    areas = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def detection_checker(score_threshold: float):
    def check(
        predictor: Predictor,
        model: nn.Module,
        data: ExportData,
        *,
        target: Path,
        file_format: str,
        quantization: str,
        **_: Any,
    ) -> DetectionExportCheck:
        expected, stable = reference_detections(model, data.check)
        got = predictor.detect_batch(data.check)
        if quantization == "none":  # every detection that rounding-sized differences cannot move
            threshold = max(score_threshold, float(np.median(stable)))
            thresholds: float | np.ndarray = np.maximum(stable, score_threshold)
        else:
            threshold = thresholds = max(score_threshold, REPORT_SCORE)
        agreement, compared, box_diff, score_diff, max_box, max_score = compare_detections(
            expected, got, thresholds
        )
        check = DetectionExportCheck(
            format=file_format,
            quantization=quantization,
            inputs=data.description,
            num_inputs=len(data.check),
            agreement=agreement,
            compared=compared,
            box_diff=box_diff,
            score_diff=score_diff,
            max_box_diff=max_box,
            max_score_diff=max_score,
            score_threshold=threshold,
            file_bytes=Path(predictor.path).stat().st_size,
        )
        if quantization == "none":
            if not (
                agreement >= FLOAT_AGREEMENT and box_diff <= BOX_TOLERANCE and score_diff <= BOX_TOLERANCE
            ):
                raise ExportCheckError(
                    f"{target}: the exported file's detections differ from PyTorch's ({check}); nothing was "
                    "written. This is a bug in the exporter for this model: please report it"
                )
        elif agreement < AGREEMENT_WARNING:
            log.warning(
                "%s: the %s file's detections agree with PyTorch's on only %.1f%% (%d detections scoring >= "
                "%g on %d %s); check its AP before deploying it",
                target,
                quantization,
                100 * agreement,
                compared,
                threshold,
                len(data.check),
                data.description,
            )
        log.info("%s: %s", target, check)
        return check

    return check
