"""A segmenter's training report: loss and mIoU per epoch, IoU per class, and test images in rows of three:
the image, the true mask and the predicted mask, each mask as a Pascal VOC colour overlay on the image.

Plain data in, as `effnet.image_segmenter` records it::

    history:  [{"epoch", "train_loss", "train_pixel_accuracy", "val_loss" | None, "val_mIoU" | None,
                "val_pixel_accuracy" | None, "lr", "seconds"}, ...]
    metrics:  {"mIoU", "pixel_accuracy", "IoU/<label>" ...}
    examples: [(sample with .path and .mask(), predicted label map at the image's size), ...]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from effnet.report import dense_report
from effnet.report.files import atomic_write_text, new_figure, png_path, save_figure
from effnet.report.formatting import fixed
from effnet.report.html import _figure
from effnet.runtime.segmentation import colour_overlay

REPORT = "report.html"
CURVES = "training_curves.png"
IOU_PER_CLASS = "iou_per_class.png"
OVERLAYS = "overlays.png"


def per_class_iou(metrics: dict) -> list[tuple[str, float | None]]:
    """(label, IoU) from the ``IoU/<label>`` keys (None: the class is in neither truth nor prediction)."""
    return dense_report.per_class_scores(metrics, "IoU/", math.isnan)


def plot_segmentation_curves(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Training and validation loss, and validation mIoU / pixel accuracy, per epoch."""
    losses = (("train_loss", "train loss", "o"), ("val_loss", "val loss", "o"))
    scores = (("val_mIoU", "validation mIoU", "o"), ("val_pixel_accuracy", "validation pixel accuracy", "o"))
    return dense_report.plot_loss_and_scores(
        history, path, losses, scores, "loss (cross-entropy per pixel)", "validation"
    )


def plot_iou_per_class(metrics: dict, path: str | os.PathLike) -> Path:
    """Horizontal bars of IoU per class, in label order from the top."""
    return dense_report.plot_class_bars(per_class_iou(metrics)[::-1], path, "IoU", "IoU per class")


def plot_overlays(examples: Sequence[tuple], path: str | os.PathLike) -> Path:
    """One row per example: the image, its true mask and the predicted mask (colour overlays)."""
    path = png_path(path)
    rows = max(1, len(examples))
    figure = new_figure(9, 3 * rows)
    grid = figure.subplots(rows, 3, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for row, (sample, predicted) in zip(grid, examples, strict=False):
        with Image.open(sample.path) as opened:
            image = opened.convert("RGB")
        truth = sample.mask()
        for axes, shown, title in (
            (row[0], image, Path(sample.path).name),
            (row[1], colour_overlay(image, truth), "truth"),
            (row[2], colour_overlay(image, np.asarray(predicted)), "prediction"),
        ):
            axes.imshow(shown)
            axes.set_title(title, fontsize=8)
    return save_figure(figure, path)


def write_segmentation_report(
    run_dir: str | os.PathLike,
    run_info: dict,
    history: Sequence[dict],
    metrics: dict,
    examples: Sequence[tuple],
    label_names: Sequence[str],
) -> Path:
    """Write ``report.html`` with training_curves.png, iou_per_class.png and overlays.png into ``run_dir``;
    return the path of report.html."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plot_segmentation_curves(history, run_dir / CURVES)
    plot_iou_per_class(metrics, run_dir / IOU_PER_CLASS)
    plot_overlays(examples, run_dir / OVERLAYS)
    summary = [
        ("mIoU (mean IoU over classes)", fixed(metrics.get("mIoU"), 3)),
        ("pixel accuracy", fixed(metrics.get("pixel_accuracy"), 3)),
    ]
    del label_names  # the classes come with the metrics, in label order
    sections = [
        "<h2>Training</h2>",
        _figure(CURVES, "Loss per epoch, and validation mIoU and pixel accuracy (at the input size)."),
        dense_report.epoch_table(
            history, (("val_mIoU", "val mIoU"), ("val_pixel_accuracy", "val pixel acc."))
        ),
        "<h2>IoU per class</h2>",
        '<div class="columns">',
        dense_report.class_table("IoU", per_class_iou(metrics)),
        _figure(IOU_PER_CLASS, "Intersection over union of each class over all test pixels."),
        "</div>",
        "<h2>Test images</h2>",
        _figure(OVERLAYS, "Each test image, its true mask and the predicted mask, in Pascal VOC colours."),
    ]
    page = dense_report.render_dense_report(
        run_info, "segmenter", "segmentation", "Test metrics", summary, sections
    )
    return atomic_write_text(run_dir / REPORT, page)
