"""A segmenter's training report: loss and mIoU per epoch, IoU per class, and test images in rows of three:
the image, the true mask and the predicted mask, each mask as a Pascal VOC colour overlay on the image.

Plain data in, as `effnet.image_segmenter` records it::

    history:  [{"epoch", "train_loss", "train_pixel_accuracy", "val_loss" | None, "val_mIoU" | None,
                "val_pixel_accuracy" | None, "lr", "seconds"}, ...]
    metrics:  {"mIoU", "pixel_accuracy", "IoU/<label>" ...}
    examples: [(sample with .path and .mask(), predicted label map at the image's size), ...]
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image

from effnet.report.files import atomic_write_text, new_figure, png_path, save_figure
from effnet.report.formatting import fixed, number_or_none
from effnet.report.html import _CSS, _figure, _key_values, _section, _table
from effnet.runtime.segmentation import colour_overlay

REPORT = "report.html"
CURVES = "training_curves.png"
IOU_PER_CLASS = "iou_per_class.png"
OVERLAYS = "overlays.png"


def per_class_iou(metrics: dict) -> list[tuple[str, float | None]]:
    """(label, IoU) from the ``IoU/<label>`` keys (None: the class is in neither truth nor prediction)."""
    rows = []
    for key, value in metrics.items():
        if key.startswith("IoU/"):
            number = number_or_none(value)
            rows.append((key[4:], None if number is None or math.isnan(number) else number))
    return rows


def plot_segmentation_curves(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Training and validation loss, and validation mIoU / pixel accuracy, per epoch."""
    path = png_path(path)
    figure = new_figure(10, 4)
    if not history:
        figure.text(0.5, 0.5, "no training history recorded", ha="center", va="center", fontsize=14)
        return save_figure(figure, path)
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    loss_axes, score_axes = figure.subplots(1, 2)
    plotted = False
    for axes, keys in (
        (loss_axes, (("train_loss", "train loss"), ("val_loss", "val loss"))),
        (score_axes, (("val_mIoU", "validation mIoU"), ("val_pixel_accuracy", "validation pixel accuracy"))),
    ):
        for key, label in keys:
            values = [number_or_none(row.get(key)) for row in history]
            if any(v is not None for v in values):
                axes.plot(epochs, [math.nan if v is None else v for v in values], marker="o", label=label)
                plotted = plotted or axes is score_axes
    loss_axes.set(xlabel="epoch", title="loss (cross-entropy per pixel)")
    loss_axes.legend()
    if plotted:
        score_axes.set(xlabel="epoch", title="validation", ylim=(0, 1))
        score_axes.legend()
    else:
        score_axes.axis("off")
        score_axes.text(0.5, 0.5, "no validation data", ha="center", va="center")
    return save_figure(figure, path)


def plot_iou_per_class(metrics: dict, path: str | os.PathLike) -> Path:
    path = png_path(path)
    rows = per_class_iou(metrics)
    figure = new_figure(6, 0.4 * max(len(rows), 2) + 1)
    axes = figure.subplots()
    axes.barh([label for label, _ in rows][::-1], [value or 0.0 for _, value in rows][::-1], color="#4363d8")
    for position, (_, value) in enumerate(rows[::-1]):
        axes.text((value or 0.0) + 0.01, position, "n/a" if value is None else f"{value:.3f}", va="center")
    axes.set(xlim=(0, 1.1), xlabel="IoU", title="IoU per class")
    return save_figure(figure, path)


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
    model = run_info.get("model", "segmenter")
    title = f"{model} on {run_info['dataset']}" if run_info.get("dataset") else str(model)
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    summary = [
        ("mIoU (mean IoU over classes)", fixed(metrics.get("mIoU"), 3)),
        ("pixel accuracy", fixed(metrics.get("pixel_accuracy"), 3)),
    ]
    classes = [(label, "n/a" if iou is None else f"{iou:.3f}") for label, iou in per_class_iou(metrics)]
    epochs = [
        (
            str(row.get("epoch")),
            fixed(row.get("train_loss"), 4),
            fixed(row.get("val_loss"), 4),
            fixed(row.get("val_mIoU"), 3),
            fixed(row.get("val_pixel_accuracy"), 3),
            fixed(row.get("seconds"), 1),
        )
        for row in history
    ]
    del label_names  # the classes come with the metrics, in label order
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="subtitle">effnet segmentation report, written {escape(written)}</p>',
        '<div class="columns">',
        _section("Test metrics", _table([], summary, numeric={1}, css_class="summary"), level=2),
        _section("Run", _key_values(run_info), level=2) if run_info else "",
        "</div>",
        "<h2>Training</h2>",
        _figure(CURVES, "Loss per epoch, and validation mIoU and pixel accuracy (at the input size)."),
        _table(
            ["epoch", "train loss", "val loss", "val mIoU", "val pixel acc.", "seconds"],
            epochs,
            numeric=set(range(6)),
        ),
        "<h2>IoU per class</h2>",
        '<div class="columns">',
        _table(["class", "IoU"], classes, numeric={1}),
        _figure(IOU_PER_CLASS, "Intersection over union of each class over all test pixels."),
        "</div>",
        "<h2>Test images</h2>",
        _figure(OVERLAYS, "Each test image, its true mask and the predicted mask, in Pascal VOC colours."),
    ]
    body = "\n".join(part for part in parts if part)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}: effnet report</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return atomic_write_text(run_dir / REPORT, page)
