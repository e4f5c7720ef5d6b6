"""Training curves: loss and accuracy per epoch, train and validation, with the best epoch marked.

``history`` is the list of per-epoch dicts a training run records::

    {"epoch": int, "train_loss": float, "train_accuracy": float,
     "val_loss": float | None, "val_accuracy": float | None, "lr": float, "seconds": float}

``val_*`` are None when the run had no validation data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from effnet.report.files import new_figure, png_path, save_figure

TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"
BEST_COLOR = "#2ca02c"

# Past this many epochs, per-epoch markers turn the lines into a smear.
_MARKERS_UP_TO = 40


def best_validation_epoch(history: Sequence[dict]) -> int | None:
    """The epoch with the highest validation accuracy (lowest validation loss breaks ties, the earlier
    epoch wins a full tie), as training picks it; None without validation data."""
    best, best_key = None, None
    for row in history:
        accuracy = _number(row.get("val_accuracy"))
        if math.isnan(accuracy):
            continue
        loss = _number(row.get("val_loss"))
        key = (accuracy, -(math.inf if math.isnan(loss) else loss))
        if best_key is None or key > best_key:
            best, best_key = row.get("epoch"), key
    return best


def plot_training_curves(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Plot loss and accuracy per epoch (train and validation) to the PNG ``path``, with an SVG copy.

    The best validation epoch (see `best_validation_epoch`) is marked on both panels. One epoch shows as
    points; without validation data only the training curves are drawn. Returns the PNG path.
    """
    path = png_path(path)
    figure = new_figure(10, 4)
    if not history:
        figure.text(0.5, 0.5, "no training history recorded", ha="center", va="center", fontsize=14)
        return save_figure(figure, path, svg=True)

    epochs = [int(row.get("epoch", i + 1)) for i, row in enumerate(history)]
    best = best_validation_epoch(history)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    _panel(loss_axes, epochs, history, "loss", best)
    _panel(accuracy_axes, epochs, history, "accuracy", best)
    accuracy_axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    has_val = any(not math.isnan(_number(row.get("val_loss"))) for row in history)
    title = f"Training curves ({len(history)} epoch{'s' if len(history) != 1 else ''})"
    if not has_val:
        title += ": no validation data"
    figure.suptitle(title, fontsize=12)
    return save_figure(figure, path, svg=True)


def _panel(
    axes: Axes,
    epochs: list[int],
    history: Sequence[dict],
    metric: str,
    best: int | None,
) -> None:
    marker = "o" if len(epochs) <= _MARKERS_UP_TO else None
    train = [_number(row.get(f"train_{metric}")) for row in history]
    val = [_number(row.get(f"val_{metric}")) for row in history]
    axes.plot(epochs, train, color=TRAIN_COLOR, marker=marker, markersize=4, label=f"train {metric}")
    if not all(math.isnan(v) for v in val):
        axes.plot(epochs, val, color=VAL_COLOR, marker=marker, markersize=4, label=f"validation {metric}")
    if best is not None and best in epochs:
        value = val[epochs.index(best)]
        axes.axvline(best, color=BEST_COLOR, linestyle=":", linewidth=1.5)
        if not math.isnan(value):
            shown = f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}"
            axes.plot(
                [best],
                [value],
                linestyle="none",
                marker="*",
                markersize=14,
                color=BEST_COLOR,
                markeredgecolor="white",
                zorder=5,
                label=f"best epoch {best}: {shown}",
            )
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title(metric.capitalize(), fontsize=11)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        axes.set_xlim(epochs[0] - 1, epochs[0] + 1)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=9, framealpha=0.9)


def _number(value: object) -> float:
    """A float, or NaN for None / missing / non-numeric values (matplotlib leaves a gap there)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
