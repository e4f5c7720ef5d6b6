"""The metrics of a detailed evaluation as a plain-text table, for `effnet evaluate` and `effnet train`."""

from __future__ import annotations

from collections.abc import Sequence

from effnet.report.formatting import class_labels, fixed, percent, top_k_items


def format_metrics_table(metrics: dict) -> str:
    """Overall accuracy, top-k, loss and macro-F1, then precision / recall / F1 / support for every class.

    ``metrics`` is the dict of a detailed evaluation::

        {"loss": float, "accuracy": float, "num_images": int, "top_k_accuracy": {"5": float, ...},
         "labels": [str], "per_class": {label: {"precision", "recall", "f1", "support"}},
         "confusion_matrix": [[int]], "macro_f1": float}

    Classes are listed in ``labels`` order. Missing values print as "-".
    """
    images = metrics.get("num_images")
    overall = [("accuracy", percent(metrics.get("accuracy")))]
    overall += [(f"top-{k}", percent(value)) for k, value in top_k_items(metrics)]
    overall += [("loss", fixed(metrics.get("loss"), 4)), ("macro F1", fixed(metrics.get("macro_f1"), 4))]
    if images is not None:
        overall.append(("images", str(images)))
    width = max(len(name) for name, _ in overall)
    lines = [f"{name.ljust(width)}  {value}" for name, value in overall]

    per_class = metrics.get("per_class") or {}
    rows = []
    for label in class_labels(metrics):
        scores = per_class.get(label, {})
        rows.append(
            [
                label,
                fixed(scores.get("precision"), 3),
                fixed(scores.get("recall"), 3),
                fixed(scores.get("f1"), 3),
                "-" if scores.get("support") is None else str(scores["support"]),
            ]
        )
    if rows:
        lines += ["", _table(["class", "precision", "recall", "f1", "support"], rows)]
    return "\n".join(lines)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the class column left-aligned, numbers right-aligned."""
    cells = [list(headers), *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])
