"""Accuracy vs latency, one line per family, as in the EfficientNet and MobileNetV3 papers' figures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _accuracy(row: dict[str, Any]) -> tuple[float | None, str]:
    if row.get("accuracy") is not None:
        return 100.0 * row["accuracy"], "measured"
    return row.get("top1_reference"), "reference"


def plot_accuracy_latency(
    rows: Sequence[dict[str, Any]], path: str | os.PathLike, title: str | None = None
) -> list[Path]:
    """Write the scatter of `run_bench` rows to ``path`` (a .png) and to the .svg beside it; return both.

    y: accuracy measured on ``--data`` when the rows have it, else the reference ImageNet top-1;
    x: median latency (ms per batch). One line per (family, format, threads), points in MACs order and
    labelled with the model name. Skipped rows and rows without an accuracy are left out.
    """
    from effnet.report.files import new_figure, png_path, save_figure

    target = png_path(path, "--plot")

    points = [
        (row, *_accuracy(row))
        for row in rows
        if row.get("latency_ms_median") is not None and _accuracy(row)[0] is not None
    ]
    if not points:
        raise ValueError(
            "--plot: no row has both a latency and an accuracy; measure models with a reference top-1 "
            "(`effnet models` lists them) or pass --run with --data"
        )
    kinds = {kind for _, _, kind in points}
    groups: dict[tuple[str, str, int], list[tuple[float, float, str]]] = {}
    for row, accuracy, _ in points:
        key = (row["family"], row["format"], row["threads"])
        groups.setdefault(key, []).append((row["macs"], row["latency_ms_median"], accuracy, row["model"]))

    figure = new_figure(8, 5.5)
    axes = figure.subplots()
    for (family, file_format, threads), values in sorted(groups.items()):
        values.sort()  # in model-size (MACs) order, as the papers draw a family's scaling curve
        _, latencies, accuracies, _ = zip(*values, strict=True)
        label = f"{family} ({file_format}, {threads} thread{'s' if threads > 1 else ''})"
        axes.plot(latencies, accuracies, marker="o", label=label)
        for _, x, y, name in values:
            axes.annotate(_short(name), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    batch = points[0][0].get("batch", 1)
    axes.set_xlabel(f"latency (ms per batch of {batch}, median)")
    which = "top-1 accuracy on --data (%)" if kinds == {"measured"} else "ImageNet top-1 (%, reference)"
    if len(kinds) > 1:
        which = "top-1 (%): measured where given, else ImageNet reference"
    axes.set_ylabel(which)
    axes.set_title(title or "Accuracy vs latency on this machine")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    axes.margins(x=0.15, y=0.08)
    save_figure(figure, target, svg=True)
    return [target, target.with_suffix(".svg")]


def _short(name: str) -> str:
    for prefix in ("efficientnet_", "mobilenet_"):
        if name.startswith(prefix):
            return name.removeprefix(prefix) if prefix == "efficientnet_" else "mnet_" + name[len(prefix) :]
    return name
