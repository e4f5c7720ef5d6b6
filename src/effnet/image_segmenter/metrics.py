"""Segmentation metrics from a confusion matrix (Pascal VOC's protocol): IoU per class = TP / (TP + FP +
FN) over all pixels of all images, mIoU the mean over the classes that occur (in the truth or the
prediction), pixel accuracy = correct / labelled pixels. Pixels marked 255 count nowhere. numpy only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE_INDEX = 255


def confusion_matrix(prediction: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [C, C]: row = true class, column = predicted class, over pixels whose truth is not 255."""
    truth = np.asarray(truth).reshape(-1)
    prediction = np.asarray(prediction).reshape(-1)
    if truth.shape != prediction.shape:
        raise ValueError(f"prediction has {prediction.size} pixels, the mask {truth.size}; resize one")
    kept = truth != IGNORE_INDEX
    truth, prediction = truth[kept].astype(np.int64), prediction[kept].astype(np.int64)
    if truth.size and (truth.max() >= num_classes or prediction.max() >= num_classes):
        raise ValueError(f"class indices past {num_classes - 1} in the mask or the prediction")
    return np.bincount(truth * num_classes + prediction, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def segmentation_metrics(confusion: np.ndarray, label_names: Sequence[str]) -> dict[str, float]:
    """``{"mIoU", "pixel_accuracy", "IoU/<label>" ...}`` from a summed `confusion_matrix`. A class absent
    from both the truth and the prediction has no IoU (NaN) and is left out of the mean."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
    total = confusion.sum()
    metrics = {
        "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        "pixel_accuracy": float(true_positive.sum() / total) if total else 0.0,
    }
    metrics.update({f"IoU/{name}": float(value) for name, value in zip(label_names, iou, strict=True)})
    return metrics
