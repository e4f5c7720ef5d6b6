"""A grid of misclassified images, most confident mistakes first (often mislabeled files).

``misclassified`` is a list of dicts, one per wrongly predicted image::

    {"path": str, "true": str, "predicted": str, "probability": float}

``probability`` is the model's confidence in the wrong prediction.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from PIL import Image

from effnet.data.images import load_image
from effnet.report.files import new_figure, png_path, save_figure

THUMBNAIL = 160  # pixels, longest side
_MAX_LABEL_CHARS = 22
_ONE_LINE_TITLE_CHARS = 30  # what fits across a tile at the title's font size
_MAX_NAME_CHARS = 26


def plot_misclassified(
    misclassified: Sequence[dict], path: str | os.PathLike, max_images: int = 24, columns: int = 6
) -> Path:
    """Plot up to ``max_images`` misclassified images in a grid of ``columns`` to the PNG ``path``.

    Images are ordered by descending ``probability`` and titled ``"true -> predicted (p)"``, with the file
    name below. A file that cannot be read shows a gray placeholder instead; an empty list gives a figure
    saying there are no misclassified images. Returns the PNG path.
    """
    path = png_path(path)
    for name, value in (("max_images", max_images), ("columns", columns)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"plot_misclassified: {name} must be a positive integer, got {value!r}")
    if not misclassified:
        figure = new_figure(6, 1.5)
        figure.text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=14)
        return save_figure(figure, path)

    ordered = sorted(misclassified, key=_confidence_order)
    shown = ordered[:max_images]
    columns = min(columns, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = new_figure(columns * 2.1, rows * 2.7 + 0.4)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat[len(shown) :]:
        axes.set_axis_off()
    for axes, item in zip(grid.flat, shown, strict=False):
        _tile(axes, item)
    title = f"{len(misclassified)} misclassified image{'s' if len(misclassified) != 1 else ''}"
    if len(misclassified) > len(shown):
        title += f", the {len(shown)} most confident shown"
    else:
        title += ", most confident first"
    figure.suptitle(f"{title}; each titled true -> predicted (confidence)", fontsize=11)
    return save_figure(figure, path)


def _tile(axes: Axes, item: dict) -> None:
    source = str(item.get("path", ""))
    thumbnail = _thumbnail(source)
    if thumbnail is None:
        axes.imshow(
            np.full((THUMBNAIL, THUMBNAIL, 3), 215, dtype=np.uint8), extent=(0, THUMBNAIL, THUMBNAIL, 0)
        )
        axes.text(
            THUMBNAIL / 2, THUMBNAIL / 2, "cannot read\nimage", ha="center", va="center", color="#555555"
        )
    else:
        # Centered in a fixed square, so titles line up across a row whatever the images' aspect ratios.
        height, width = thumbnail.shape[:2]
        left, top = (THUMBNAIL - width) / 2, (THUMBNAIL - height) / 2
        axes.imshow(thumbnail, extent=(left, left + width, top + height, top))
    axes.set_xlim(0, THUMBNAIL)
    axes.set_ylim(THUMBNAIL, 0)
    probability = _probability(item)
    confidence = "" if math.isnan(probability) else f" ({probability:.2f})"
    true = _shorten(str(item.get("true", "?")), _MAX_LABEL_CHARS)
    predicted = _shorten(str(item.get("predicted", "?")), _MAX_LABEL_CHARS)
    title = f"{true} -> {predicted}{confidence}"
    if len(title) > _ONE_LINE_TITLE_CHARS:
        title = f"{true} ->\n{predicted}{confidence}"
    axes.set_title(title, fontsize=8.5, color="#8b0000")
    name = _shorten(os.path.basename(source), _MAX_NAME_CHARS, keep_end=True)
    axes.set_xlabel(name, fontsize=7, color="#555555")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)


def _thumbnail(source: str) -> np.ndarray | None:
    """The image at ``source`` scaled to `THUMBNAIL` pixels on its longest side, or None if it cannot be read
    for any reason."""
    try:
        image = load_image(source, target_size=(THUMBNAIL, THUMBNAIL))
        scale = THUMBNAIL / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # Small images (8x8 digits, icons) are enlarged with visible pixels rather than blurred.
        resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
        return np.asarray(image.resize(size, resample))
    except Exception:  # a report must never fail on one bad file: it shows a placeholder instead
        return None


def _probability(item: dict) -> float:
    try:
        return float(item.get("probability"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _confidence_order(item: dict) -> float:
    probability = _probability(item)
    return math.inf if math.isnan(probability) else -probability


def _shorten(text: str, limit: int, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if keep_end else text[: limit - 1] + "…"
