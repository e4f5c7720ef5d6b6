"""Confusion matrix plot that stays readable from 2 to 100 classes.

Colors are row-normalized (the share of each true class that went to each prediction), so a rare class's
mistakes are as visible as a common one's; the cells carry the raw image counts while they fit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, PowerNorm

from effnet.report.files import new_figure, png_path, save_figure

# Cell edge in inches: large for a handful of classes, shrinking to a floor that still fits a 5 pt label.
_MAX_CELL = 0.6
_MIN_CELL = 0.17
_MATRIX_INCHES = 7.0  # the matrix's side while cells are between the two limits
# Counts are written in cells at least this many points wide; smaller cells get colors only.
_ANNOTATE_MIN_CELL_PT = 17.0
_MAX_LABEL_CHARS = 24
_MAX_TICK_LABELS = 120  # past this, label every k-th class


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]] | np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    normalize: bool = True,
) -> Path:
    """Plot ``confusion`` (counts; rows = true class, columns = predicted) to the PNG ``path``.

    With ``normalize`` the colors show each row as fractions of that true class; cells are annotated with
    the raw counts when the cells are large enough to read them (zero cells off the diagonal stay blank).
    Labels are shortened, shrunk and rotated as the class count grows. Returns the PNG path.
    """
    path = png_path(path)
    counts = np.asarray(confusion, dtype=np.int64)
    labels = [str(label) for label in labels]
    n = len(labels)
    if counts.ndim != 2 or counts.shape != (n, n):
        raise ValueError(
            f"confusion: expected a {n}x{n} matrix (one row and column per label), got shape {counts.shape}"
        )
    if n == 0:
        figure = new_figure(5, 2)
        figure.text(0.5, 0.5, "no classes to show", ha="center", va="center", fontsize=14)
        return save_figure(figure, path)

    cell = min(_MAX_CELL, max(_MIN_CELL, _MATRIX_INCHES / n))
    cell_pt = cell * 72
    label_size = float(np.clip(cell_pt * 0.55, 5, 10))
    shown = [_shorten(label) for label in labels]
    label_inches = max(len(s) for s in shown) * label_size * 0.6 / 72
    rotation = _rotation(n, shown)
    x_label_inches = label_inches * (1.0 if rotation == 90 else 0.75 if rotation else 0) + 0.3
    side = n * cell
    figure = new_figure(max(5.6, side + label_inches + 2.2), max(4.0, side + x_label_inches + 1.3))
    axes = figure.subplots()

    annotate = cell_pt >= _ANNOTATE_MIN_CELL_PT
    rows = counts.sum(axis=1, keepdims=True)
    if normalize:
        colors = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        color_label = "share of true class"
    else:
        colors = counts.astype(float)
        color_label = "images"
    # Without counts in the cells, a class's occasional mistake (1 of 40 images) would be near-white on a
    # linear scale; a square-root scale keeps it visible, and the colorbar shows the true values.
    scale = (
        Normalize(0.0, 1.0 if normalize else None)
        if annotate
        else PowerNorm(0.5, 0.0, 1.0 if normalize else None)
    )
    # Colored here, once per cell: imshow would apply the norm to the upsampled image, ~10x slower.
    mappable = ScalarMappable(norm=scale, cmap="Blues")
    mappable.set_array(colors)
    axes.imshow(mappable.to_rgba(colors, bytes=True), interpolation="nearest")
    colorbar = figure.colorbar(mappable, ax=axes, shrink=min(1.0, max(0.4, 4.0 / max(side, 1e-9))), pad=0.02)

    _ticks(axes, shown, label_size, rotation)
    if annotate:
        _annotate(axes, counts, colors / (colors.max() or 1.0), cell_pt)
    if n <= 40:  # thin white lines between cells; at more classes they would wash out the colors
        axes.set_xticks(np.arange(-0.5, n), minor=True)
        axes.set_yticks(np.arange(-0.5, n), minor=True)
        axes.grid(which="minor", color="white", linewidth=1.0)
        axes.tick_params(which="minor", length=0)

    text_size = 11 if side < 10 else 15  # a 100-class figure is ~2000 pixels wide
    axes.set_xlabel("predicted class", fontsize=text_size)
    axes.set_ylabel("true class", fontsize=text_size)
    colorbar.ax.tick_params(labelsize=text_size - 1)
    colorbar.set_label(color_label, fontsize=text_size)
    correct = int(np.trace(counts))
    total = int(counts.sum())
    accuracy = f", {correct / total:.1%} correct" if total else ""
    figure.suptitle(f"Confusion matrix: {n} classes, {total} images{accuracy}", fontsize=text_size + 1)
    return save_figure(figure, path)


def _shorten(label: str) -> str:
    return label if len(label) <= _MAX_LABEL_CHARS else label[: _MAX_LABEL_CHARS - 1] + "…"


def _rotation(n: int, labels: Sequence[str]) -> int:
    longest = max(len(s) for s in labels)
    if n <= 10 and longest * n <= 60:
        return 0
    return 45 if n <= 30 else 90


def _ticks(axes: Axes, labels: Sequence[str], size: float, rotation: int) -> None:
    n = len(labels)
    step = math.ceil(n / _MAX_TICK_LABELS)
    positions = np.arange(0, n, step)
    axes.set_xticks(positions, [labels[i] for i in positions], fontsize=size, rotation=rotation)
    axes.set_yticks(positions, [labels[i] for i in positions], fontsize=size)
    if rotation == 45:
        for text in axes.get_xticklabels():
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
    axes.tick_params(length=2)


def _annotate(axes: Axes, counts: np.ndarray, shade: np.ndarray, cell_pt: float) -> None:
    digits = len(str(int(counts.max()))) if counts.size else 1
    # A count should fill at most ~70% of the cell width; a digit is ~0.6 em wide.
    size = float(np.clip(min(cell_pt * 0.4, cell_pt * 0.7 / (0.6 * digits)), 5, 11))
    n = counts.shape[0]
    for i in range(n):
        for j in range(n):
            if counts[i, j] == 0 and i != j:
                continue
            axes.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=size,
                color="white" if shade[i, j] > 0.55 else "#222222",
            )
