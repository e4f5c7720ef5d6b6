"""Reading the report's plain-data inputs and formatting their numbers: shared by the HTML and terminal."""

from __future__ import annotations

import math


def class_labels(metrics: dict) -> list[str]:
    """Class names in the metrics' ``labels`` order, falling back to the ``per_class`` keys."""
    labels = metrics.get("labels") or list((metrics.get("per_class") or {}).keys())
    return [str(label) for label in labels]


def top_k_items(metrics: dict) -> list[tuple[int, float]]:
    """(k, accuracy) for k > 1 in increasing k; top-1 is the accuracy itself."""
    items = []
    for key, value in (metrics.get("top_k_accuracy") or {}).items():
        try:
            k = int(key)
        except (TypeError, ValueError):
            continue
        if k > 1:
            items.append((k, value))
    return sorted(items)


def percent(value: object) -> str:
    number = number_or_none(value)
    return "-" if number is None else f"{number:.2%}"


def fixed(value: object, decimals: int) -> str:
    number = number_or_none(value)
    return "-" if number is None else f"{number:.{decimals}f}"


def number_or_none(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
