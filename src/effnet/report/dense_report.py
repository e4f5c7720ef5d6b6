"""The pieces a detector's and a segmenter's training report share (`effnet.report.detection`,
`effnet.report.segmentation`): a score per class from the metrics dict, the loss and validation curves per
epoch, bars of a score per class, the epoch table and the page around the task's own sections.

Plain data in: ``history`` is the list of epoch dicts a run records (``epoch``, ``train_loss``,
``val_loss``, the task's ``val_*`` scores, ``seconds``); ``metrics`` the dict the task's ``evaluate`` gives.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path

from effnet.report.files import new_figure, png_path, save_figure
from effnet.report.formatting import fixed, number_or_none
from effnet.report.html import _key_values, _section, _table, html_page

Curve = tuple[str, str, str]  # (history key, legend label, marker)


def per_class_scores(
    metrics: dict, prefix: str, undefined: Callable[[float], bool]
) -> list[tuple[str, float | None]]:
    """(label, score) from the ``<prefix><label>`` keys, in the metrics' order (None: not a number, or a
    value ``undefined`` says has no meaning)."""
    rows = []
    for key, value in metrics.items():
        if key.startswith(prefix):
            number = number_or_none(value)
            rows.append((key[len(prefix) :], None if number is None or undefined(number) else number))
    return rows


def plot_loss_and_scores(
    history: Sequence[dict],
    path: str | os.PathLike,
    losses: Sequence[Curve],
    scores: Sequence[Curve],
    loss_title: str,
    score_title: str,
) -> Path:
    """Two plots per epoch side by side: the ``losses`` and, with validation data, the ``scores`` (0..1)."""
    path = png_path(path)
    figure = new_figure(10, 4)
    if not history:
        figure.text(0.5, 0.5, "no training history recorded", ha="center", va="center", fontsize=14)
        return save_figure(figure, path)
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    loss_axes, score_axes = figure.subplots(1, 2)
    plotted = False
    for axes, curves in ((loss_axes, losses), (score_axes, scores)):
        for key, label, marker in curves:
            values = [number_or_none(row.get(key)) for row in history]
            if any(v is not None for v in values):
                axes.plot(epochs, [math.nan if v is None else v for v in values], marker=marker, label=label)
                plotted = plotted or axes is score_axes
    loss_axes.set(xlabel="epoch", title=loss_title)
    loss_axes.legend()
    if plotted:
        score_axes.set(xlabel="epoch", title=score_title, ylim=(0, 1))
        score_axes.legend()
    else:
        score_axes.axis("off")
        score_axes.text(0.5, 0.5, "no validation data", ha="center", va="center")
    return save_figure(figure, path)


def plot_class_bars(
    rows: Sequence[tuple[str, float | None]], path: str | os.PathLike, xlabel: str, title: str
) -> Path:
    """Horizontal bars of a score per class, ``rows`` from the bottom up (None: drawn as 0, labelled n/a)."""
    path = png_path(path)
    figure = new_figure(6, 0.4 * max(len(rows), 2) + 1)
    axes = figure.subplots()
    axes.barh([label for label, _ in rows], [value or 0.0 for _, value in rows], color="#4363d8")
    for position, (_, value) in enumerate(rows):
        axes.text((value or 0.0) + 0.01, position, "n/a" if value is None else f"{value:.3f}", va="center")
    axes.set(xlim=(0, 1.1), xlabel=xlabel, title=title)
    return save_figure(figure, path)


def class_table(header: str, rows: Sequence[tuple[str, float | None]]) -> str:
    """The table of a score per class (n/a: undefined)."""
    shown = [(label, "n/a" if value is None else f"{value:.3f}") for label, value in rows]
    return _table(["class", header], shown, numeric={1})


def epoch_table(history: Sequence[dict], scores: Sequence[tuple[str, str]]) -> str:
    """One row per epoch: train and validation loss, the ``scores`` ((history key, header)) and seconds."""
    rows = [
        (
            str(row.get("epoch")),
            fixed(row.get("train_loss"), 4),
            fixed(row.get("val_loss"), 4),
            *(fixed(row.get(key), 3) for key, _ in scores),
            fixed(row.get("seconds"), 1),
        )
        for row in history
    ]
    headers = ["epoch", "train loss", "val loss", *(header for _, header in scores), "seconds"]
    return _table(headers, rows, numeric=set(range(len(headers))))


def render_dense_report(
    run_info: dict,
    default_model: str,
    kind: str,
    summary_title: str,
    summary: Sequence[tuple[str, str]],
    sections: Sequence[str],
) -> str:
    """The report page: the title (model on dataset), the ``summary`` metrics next to ``run_info`` (settings
    shown as given), then the task's ``sections`` (HTML). ``kind``: "detection", "segmentation"."""
    model = run_info.get("model", default_model)
    title = f"{model} on {run_info['dataset']}" if run_info.get("dataset") else str(model)
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="subtitle">effnet {kind} report, written {escape(written)}</p>',
        '<div class="columns">',
        _section(summary_title, _table([], list(summary), numeric={1}, css_class="summary"), level=2),
        _section("Run", _key_values(run_info), level=2) if run_info else "",
        "</div>",
        *sections,
    ]
    return html_page(title, parts)
