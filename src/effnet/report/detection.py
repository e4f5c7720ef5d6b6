"""A detector's training report: loss and AP per epoch, AP per class, and a grid of test images with the
predicted boxes (solid, with label and score) over the true ones (dashed).

Plain data in, as `effnet.object_detector` records it::

    history:  [{"epoch", "train_loss", "train_class_loss", "train_box_loss", "val_loss" | None,
                "val_AP" | None, "val_AP50" | None, "lr", "seconds"}, ...]
    metrics:  Model Maker's COCO dict {"AP", "AP50", ..., "AP_/<label>"}
    examples: [{"path", "true_boxes" [[x0, y0, x1, y1]...], "true_labels" [int], "boxes", "labels",
                "scores"}, ...] (boxes in the image's own pixels)
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path

from matplotlib.patches import Rectangle
from PIL import Image

from effnet.report.files import atomic_write_text, new_figure, png_path, save_figure
from effnet.report.formatting import fixed, number_or_none
from effnet.report.html import _CSS, _figure, _key_values, _section, _table

REPORT = "report.html"
CURVES = "training_curves.png"
AP_PER_CLASS = "ap_per_class.png"
DETECTIONS = "detections.png"
# COCOeval.stats under Model Maker's names, with what each one measures
METRIC_ROWS = (
    ("AP", "AP at IoU 0.50:0.95"),
    ("AP50", "AP at IoU 0.50"),
    ("AP75", "AP at IoU 0.75"),
    ("APs", "AP, small objects (< 32² px)"),
    ("APm", "AP, medium objects"),
    ("APl", "AP, large objects (> 96² px)"),
    ("ARmax1", "recall, 1 detection per image"),
    ("ARmax10", "recall, 10 detections per image"),
    ("ARmax100", "recall, 100 detections per image"),
)
_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")


def per_class_ap(metrics: dict) -> list[tuple[str, float | None]]:
    """(label, AP) from the ``AP_/<label>`` keys, in the metrics' order (None: no ground truth)."""
    rows = []
    for key, value in metrics.items():
        if key.startswith("AP_/"):
            number = number_or_none(value)
            rows.append((key[4:], None if number is None or number < 0 else number))
    return rows


def plot_detection_curves(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Training loss (total, class, box) and, with validation data, validation AP / AP50 per epoch."""
    path = png_path(path)
    figure = new_figure(10, 4)
    if not history:
        figure.text(0.5, 0.5, "no training history recorded", ha="center", va="center", fontsize=14)
        return save_figure(figure, path)
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    loss_axes, ap_axes = figure.subplots(1, 2)
    for key, label in (
        ("train_loss", "train loss"),
        ("train_class_loss", "class"),
        ("train_box_loss", "box"),
    ):
        values = [number_or_none(row.get(key)) for row in history]
        if any(v is not None for v in values):
            loss_axes.plot(epochs, [math.nan if v is None else v for v in values], marker="o", label=label)
    val_loss = [number_or_none(row.get("val_loss")) for row in history]
    if any(v is not None for v in val_loss):
        loss_axes.plot(epochs, [math.nan if v is None else v for v in val_loss], marker="s", label="val loss")
    loss_axes.set(xlabel="epoch", title="loss")
    loss_axes.legend()
    plotted = False
    for key, label in (("val_AP", "validation AP"), ("val_AP50", "validation AP50")):
        values = [number_or_none(row.get(key)) for row in history]
        if any(v is not None for v in values):
            ap_axes.plot(epochs, [math.nan if v is None else v for v in values], marker="o", label=label)
            plotted = True
    if plotted:
        ap_axes.set(xlabel="epoch", title="validation AP", ylim=(0, 1))
        ap_axes.legend()
    else:
        ap_axes.axis("off")
        ap_axes.text(0.5, 0.5, "no validation data", ha="center", va="center")
    return save_figure(figure, path)


def plot_ap_per_class(metrics: dict, path: str | os.PathLike) -> Path:
    """Horizontal bars of AP (IoU 0.50:0.95) per class, weakest at the top."""
    path = png_path(path)
    rows = sorted(per_class_ap(metrics), key=lambda item: -1.0 if item[1] is None else item[1], reverse=True)
    figure = new_figure(6, 0.4 * max(len(rows), 2) + 1)
    axes = figure.subplots()
    axes.barh([label for label, _ in rows], [value or 0.0 for _, value in rows], color="#4363d8")
    for position, (_, value) in enumerate(rows):
        axes.text((value or 0.0) + 0.01, position, "n/a" if value is None else f"{value:.3f}", va="center")
    axes.set(xlim=(0, 1.1), xlabel="AP (IoU 0.50:0.95)", title="AP per class")
    return save_figure(figure, path)


def plot_detections(
    examples: Sequence[dict], label_names: Sequence[str], path: str | os.PathLike, columns: int = 4
) -> Path:
    """A grid of images with their predicted boxes (solid, "label score") and true boxes (dashed)."""
    path = png_path(path)
    rows = max(1, math.ceil(len(examples) / columns))
    figure = new_figure(3.2 * columns, 3.2 * rows)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for axes, example in zip(grid.flat, examples, strict=False):
        with Image.open(example["path"]) as image:
            axes.imshow(image.convert("RGB"))
        for box, label in zip(example.get("true_boxes", []), example.get("true_labels", []), strict=True):
            axes.add_patch(_rectangle(box, _COLORS[int(label) % len(_COLORS)], "--", 1.2))
        for box, label, score in zip(example["boxes"], example["labels"], example["scores"], strict=True):
            color = _COLORS[int(label) % len(_COLORS)]
            axes.add_patch(_rectangle(box, color, "-", 2.0))
            axes.text(box[0], box[1], f"{label_names[int(label)]} {score:.2f}", color="white", fontsize=7,
                      va="bottom", bbox={"facecolor": color, "edgecolor": "none", "pad": 1})  # fmt: skip
        axes.set_title(Path(example["path"]).name, fontsize=8)
    return save_figure(figure, path)


def _rectangle(box: Sequence[float], color: str, style: str, width: float) -> Rectangle:
    x0, y0, x1, y1 = (float(v) for v in box)
    return Rectangle(
        (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linestyle=style, linewidth=width
    )


def write_detection_report(
    run_dir: str | os.PathLike,
    run_info: dict,
    history: Sequence[dict],
    metrics: dict,
    examples: Sequence[dict],
    label_names: Sequence[str],
) -> Path:
    """Write ``report.html`` with training_curves.png, ap_per_class.png and detections.png into
    ``run_dir``; return the path of report.html. ``run_info``: settings shown as given (model, dataset,
    epochs, training time ...)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plot_detection_curves(history, run_dir / CURVES)
    plot_ap_per_class(metrics, run_dir / AP_PER_CLASS)
    plot_detections(examples, label_names, run_dir / DETECTIONS)
    model = run_info.get("model", "detector")
    title = f"{model} on {run_info['dataset']}" if run_info.get("dataset") else str(model)
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    summary = [(f"{name} ({meaning})", _metric(metrics.get(name))) for name, meaning in METRIC_ROWS]
    classes = [(label, "n/a" if ap is None else f"{ap:.3f}") for label, ap in per_class_ap(metrics)]
    epochs = [
        (
            str(row.get("epoch")),
            fixed(row.get("train_loss"), 4),
            fixed(row.get("val_loss"), 4),
            fixed(row.get("val_AP"), 3),
            fixed(row.get("val_AP50"), 3),
            fixed(row.get("seconds"), 1),
        )
        for row in history
    ]
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="subtitle">effnet detection report, written {escape(written)}</p>',
        '<div class="columns">',
        _section("COCO metrics (test data)", _table([], summary, numeric={1}, css_class="summary"), level=2),
        _section("Run", _key_values(run_info), level=2) if run_info else "",
        "</div>",
        "<h2>Training</h2>",
        _figure(CURVES, "Training loss (focal class loss + weighted box loss) and validation AP per epoch."),
        _table(
            ["epoch", "train loss", "val loss", "val AP", "val AP50", "seconds"],
            epochs,
            numeric=set(range(6)),
        ),
        "<h2>AP per class</h2>",
        '<div class="columns">',
        _table(["class", "AP"], classes, numeric={1}),
        _figure(AP_PER_CLASS, "COCO AP (IoU 0.50:0.95) of each class; n/a: no box of it in the test data."),
        "</div>",
        "<h2>Detections</h2>",
        _figure(
            DETECTIONS,
            "Predicted boxes (solid, label and score: those scoring 0.3 or more, else an image's best few) "
            "over the true boxes (dashed).",
        ),
    ]
    body = "\n".join(part for part in parts if part)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}: effnet report</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    return atomic_write_text(run_dir / REPORT, page)


def _metric(value: object) -> str:
    number = number_or_none(value)
    return "n/a" if number is None or number < 0 else f"{number:.3f}"
