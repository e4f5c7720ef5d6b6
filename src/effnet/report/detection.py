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

import math
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.patches import Rectangle
from PIL import Image

from effnet.report import dense_report
from effnet.report.files import atomic_write_text, new_figure, png_path, save_figure
from effnet.report.formatting import number_or_none
from effnet.report.html import _figure

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
    return dense_report.per_class_scores(metrics, "AP_/", lambda value: value < 0)


def plot_detection_curves(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Training loss (total, class, box) and, with validation data, validation AP / AP50 per epoch."""
    losses = (
        ("train_loss", "train loss", "o"),
        ("train_class_loss", "class", "o"),
        ("train_box_loss", "box", "o"),
        ("val_loss", "val loss", "s"),
    )
    scores = (("val_AP", "validation AP", "o"), ("val_AP50", "validation AP50", "o"))
    return dense_report.plot_loss_and_scores(history, path, losses, scores, "loss", "validation AP")


def plot_ap_per_class(metrics: dict, path: str | os.PathLike) -> Path:
    """Horizontal bars of AP (IoU 0.50:0.95) per class, weakest at the top."""
    rows = sorted(per_class_ap(metrics), key=lambda item: -1.0 if item[1] is None else item[1], reverse=True)
    return dense_report.plot_class_bars(rows, path, "AP (IoU 0.50:0.95)", "AP per class")


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
    summary = [(f"{name} ({meaning})", _metric(metrics.get(name))) for name, meaning in METRIC_ROWS]
    sections = [
        "<h2>Training</h2>",
        _figure(CURVES, "Training loss (focal class loss + weighted box loss) and validation AP per epoch."),
        dense_report.epoch_table(history, (("val_AP", "val AP"), ("val_AP50", "val AP50"))),
        "<h2>AP per class</h2>",
        '<div class="columns">',
        dense_report.class_table("AP", per_class_ap(metrics)),
        _figure(AP_PER_CLASS, "COCO AP (IoU 0.50:0.95) of each class; n/a: no box of it in the test data."),
        "</div>",
        "<h2>Detections</h2>",
        _figure(
            DETECTIONS,
            "Predicted boxes (solid, label and score: those scoring 0.3 or more, else an image's best few) "
            "over the true boxes (dashed).",
        ),
    ]
    page = dense_report.render_dense_report(
        run_info, "detector", "detection", "COCO metrics (test data)", summary, sections
    )
    return atomic_write_text(run_dir / REPORT, page)


def _metric(value: object) -> str:
    number = number_or_none(value)
    return "n/a" if number is None or number < 0 else f"{number:.3f}"
