"""`write_report`: one self-contained HTML page (plus its PNGs) that shows a person what a training run did.

Every string that came from the user (class names are folder names, paths, run settings) is escaped; the
page has inline CSS, no scripts and no external assets, so it opens the same from disk, a share or a CI
artifact.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Collection, Iterable, Sequence
from html import escape
from pathlib import Path

from effnet.report.confusion import plot_confusion_matrix
from effnet.report.curves import best_validation_epoch, plot_training_curves
from effnet.report.files import atomic_write_text
from effnet.report.formatting import class_labels, fixed, number_or_none, percent, top_k_items
from effnet.report.misclassified import plot_misclassified

REPORT = "report.html"
TRAINING_CURVES = "training_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
MISCLASSIFIED = "misclassified.png"
_MAX_LISTED_MISTAKES = 500

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; overflow-wrap: anywhere; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.subtitle { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e6e6e6; text-align: left; vertical-align: top; }
th { background: #f4f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #e8f5e9; font-weight: 600; }
td.weak { color: #b00020; }
td.label { overflow-wrap: anywhere; max-width: 28em; }
.summary td:first-child { color: #555; }
.summary td.num { font-size: 1.05em; }
.columns { display: flex; flex-wrap: wrap; gap: 2.5em; align-items: flex-start; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.9em; }
.scroll { max-height: 32em; overflow: auto; display: inline-block; }
details summary { cursor: pointer; color: #333; margin: 0.5em 0; }
code { font-size: 0.9em; overflow-wrap: anywhere; }
"""


def write_report(
    run_dir: str | os.PathLike,
    run_info: dict,
    history: Sequence[dict],
    metrics: dict,
    misclassified: Sequence[dict],
) -> Path:
    """Write ``report.html`` and its three plots (training_curves.png, confusion_matrix.png,
    misclassified.png) into ``run_dir``; return the path of report.html.

    ``run_info``: free-form settings shown as given (model, dataset, epochs, batch size, training time,
    best epoch, image size, seed, ...); "model", "dataset", "training time" and "best epoch" keys, in any
    spelling ("best_epoch", "training time (s)"), also feed the title and the summary.
    ``history``, ``metrics``, ``misclassified``: see `plot_training_curves`, `format_metrics_table` and
    `plot_misclassified`. All files are written atomically.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    labels = class_labels(metrics)
    plot_training_curves(history, run_dir / TRAINING_CURVES)
    confusion = metrics.get("confusion_matrix") or [[0] * len(labels) for _ in labels]
    plot_confusion_matrix(confusion, labels, run_dir / CONFUSION_MATRIX)
    plot_misclassified(misclassified, run_dir / MISCLASSIFIED)
    page = render_report(run_info, history, metrics, misclassified)
    return atomic_write_text(run_dir / REPORT, page)


def render_report(
    run_info: dict, history: Sequence[dict], metrics: dict, misclassified: Sequence[dict]
) -> str:
    """The HTML of `write_report`, referring to its PNGs by file name (so they must sit beside it)."""
    model = _info(run_info, "model", "model name", "model spec", "arch") or "model"
    dataset = _info(run_info, "dataset", "dataset path", "data dir", "data path")
    title = f"{model} on {dataset}" if dataset is not None else str(model)
    best = _first_given(_info(run_info, "best epoch"), best_validation_epoch(history))
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sections = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="subtitle">effnet training report, written {_e(written)}</p>',
        '<div class="columns">',
        _section("Results", _summary(run_info, history, metrics, best), level=2),
        _section("Run", _key_values(run_info), level=2) if run_info else "",
        "</div>",
        "<h2>Training</h2>",
        _figure(TRAINING_CURVES, "Loss and accuracy per epoch; the dotted line marks the best epoch."),
        _epoch_table(history, best),
        "<h2>Confusion matrix</h2>",
        _figure(
            CONFUSION_MATRIX,
            "Rows are the true class, columns the prediction; colors are the share of each true class, "
            "numbers are image counts. Click to open at full size.",
        ),
        "<h2>Per-class results</h2>",
        "<p>Weakest classes (lowest F1) first.</p>",
        _class_table(metrics),
        "<h2>Misclassified images</h2>",
        _misclassified_section(misclassified),
    ]
    return html_page(title, sections)


def html_page(title: str, parts: Iterable[str]) -> str:
    """A whole report page: ``parts`` (HTML, empty ones left out) under ``title``, with the reports' CSS."""
    body = "\n".join(part for part in parts if part)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}: effnet report</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _summary(run_info: dict, history: Sequence[dict], metrics: dict, best: object) -> str:
    rows = [("accuracy", percent(metrics.get("accuracy")))]
    rows += [(f"top-{k} accuracy", percent(value)) for k, value in top_k_items(metrics)]
    rows += [
        ("macro F1", fixed(metrics.get("macro_f1"), 4)),
        ("loss", fixed(metrics.get("loss"), 4)),
        ("images evaluated", _text(metrics.get("num_images"))),
        ("training time", _training_time(run_info, history)),
        ("best epoch", _text(best)),
    ]
    return _table([], rows, numeric={1}, css_class="summary")


def _epoch_table(history: Sequence[dict], best: object) -> str:
    if not history:
        return "<p>No per-epoch history was recorded for this run.</p>"
    headers = [
        "epoch",
        "train loss",
        "train accuracy",
        "val loss",
        "val accuracy",
        "learning rate",
        "seconds",
    ]
    rows, classes = [], []
    for row in history:
        lr = number_or_none(row.get("lr"))
        rows.append(
            (
                _text(row.get("epoch")),
                fixed(row.get("train_loss"), 4),
                percent(row.get("train_accuracy")),
                fixed(row.get("val_loss"), 4),
                percent(row.get("val_accuracy")),
                "-" if lr is None else f"{lr:.3g}",
                fixed(row.get("seconds"), 1),
            )
        )
        classes.append("best" if best is not None and row.get("epoch") == best else "")
    table = _table(headers, rows, numeric=set(range(len(headers))), row_classes=classes)
    note = f"<p>Highlighted: epoch {_e(str(best))}, the one whose weights were kept.</p>" if best else ""
    return f'{note}<div class="scroll">{table}</div>'


def _class_table(metrics: dict) -> str:
    labels = class_labels(metrics)
    per_class = metrics.get("per_class") or {}
    if not labels:
        return "<p>No per-class results.</p>"
    confused = _most_confused(metrics.get("confusion_matrix"), labels)

    def f1_order(label: str) -> tuple[float, str]:
        f1 = number_or_none((per_class.get(label) or {}).get("f1"))
        return (f1 if f1 is not None else -1.0, label)

    rows, weak = [], []
    for label in sorted(labels, key=f1_order):
        scores = per_class.get(label) or {}
        rows.append(
            (
                label,
                fixed(scores.get("precision"), 3),
                fixed(scores.get("recall"), 3),
                fixed(scores.get("f1"), 3),
                _text(scores.get("support")),
                confused.get(label, ""),
            )
        )
        weak.append((number_or_none(scores.get("f1")) or 0.0) < 0.5)
    headers = ["class", "precision", "recall", "F1", "support", "most often mistaken for"]
    return '<div class="scroll">' + _table(headers, rows, numeric={1, 2, 3, 4}, weak=weak) + "</div>"


def _most_confused(confusion: object, labels: Sequence[str]) -> dict[str, str]:
    """For each true class, the wrong prediction it received most often, as "label (count)"."""
    result: dict[str, str] = {}
    if not isinstance(confusion, Sequence) or len(confusion) != len(labels):
        return result
    for i, row in enumerate(confusion):
        mistakes = [(count, j) for j, count in enumerate(row) if j != i and count]
        if mistakes:
            count, j = max(mistakes, key=lambda item: (item[0], -item[1]))
            result[labels[i]] = f"{labels[j]} ({count})"
    return result


def _misclassified_section(misclassified: Sequence[dict]) -> str:
    if not misclassified:
        return "<p>No misclassified images: every evaluated image was predicted correctly.</p>"
    parts = [
        f"<p>{len(misclassified)} images were misclassified; the most confident mistakes come first "
        "(they are often mislabeled or ambiguous files).</p>",
        _figure(MISCLASSIFIED, "Title: true class -> predicted class (confidence); below: the file name."),
    ]
    ordered = sorted(misclassified, key=lambda item: -(number_or_none(item.get("probability")) or 0.0))
    listed = ordered[:_MAX_LISTED_MISTAKES]
    rows = [
        (
            f"<code>{_e(str(item.get('path', '')))}</code>",
            _e(str(item.get("true", ""))),
            _e(str(item.get("predicted", ""))),
            _e(fixed(item.get("probability"), 3)),
        )
        for item in listed
    ]
    more = f", the first {len(listed)}" if len(listed) < len(misclassified) else ""
    table = _table(["file", "true", "predicted", "confidence"], rows, numeric={3}, escaped=True)
    parts.append(f"<details><summary>List of misclassified files{more}</summary>{table}</details>")
    return "\n".join(parts)


def _training_time(run_info: dict, history: Sequence[dict]) -> str:
    value = _info(run_info, "training time", "train time", "training seconds")
    seconds = number_or_none(value)
    if value is not None and seconds is None:
        return str(value)  # already formatted by the caller, e.g. "3 min"
    if seconds is None:
        epoch_seconds = [number_or_none(row.get("seconds")) for row in history]
        if not history or any(s is None for s in epoch_seconds):
            return "-"
        seconds = sum(s for s in epoch_seconds if s is not None)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def _info(run_info: dict, *names: str) -> object:
    """The ``run_info`` value whose key, ignoring case, separators and a unit in parentheses, is one of
    ``names`` ("Best_Epoch" and "best epoch" match "best epoch"; "training time (s)" matches "training
    time"); None if there is none."""
    wanted = {_key(name) for name in names}
    for key, value in run_info.items():
        if _key(str(key)) in wanted and value is not None:
            return value
    return None


def _key(name: str) -> str:
    name = re.sub(r"\(.*?\)", "", name.lower())
    return re.sub(r"[^a-z0-9]+", " ", name).strip()


def _section(title: str, content: str, level: int) -> str:
    return f"<section><h{level}>{_e(title)}</h{level}>{content}</section>"


def _key_values(run_info: dict) -> str:
    return _table([], [(str(key), _text(value)) for key, value in run_info.items()])


def _figure(file_name: str, caption: str) -> str:
    name = _e(file_name)
    return (
        f'<figure><a href="{name}"><img src="{name}" alt="{_e(caption)}"></a>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Collection[int] = (),
    css_class: str = "",
    row_classes: Sequence[str] = (),
    weak: Sequence[bool] = (),
    escaped: bool = False,
) -> str:
    """An HTML table; cells are escaped unless ``escaped`` says the caller already did it."""

    def cell(tag: str, i: int, text: str, extra: str = "") -> str:
        classes = " ".join(c for c in ("num" if i in numeric else "label", extra) if c)
        return f'<{tag} class="{classes}">{text if escaped else _e(text)}</{tag}>'

    lines = [f'<table class="{css_class}">' if css_class else "<table>"]
    if headers:
        lines.append("<tr>" + "".join(cell("th", i, h) for i, h in enumerate(headers)) + "</tr>")
    for r, row in enumerate(rows):
        row_class = row_classes[r] if r < len(row_classes) else ""
        is_weak = r < len(weak) and weak[r]
        cells = "".join(
            cell("td", i, text, "weak" if is_weak and i == 3 else "") for i, text in enumerate(row)
        )
        lines.append(f'<tr class="{row_class}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _first_given(*values: object) -> object:
    return next((value for value in values if value is not None), None)


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _e(text: str) -> str:
    return escape(text, quote=True)
