"""effnet.report: plots, the HTML report and the terminal table, on plausible inputs made without training."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image
from skimage import data
from sklearn.datasets import load_digits

from effnet.report import (
    best_validation_epoch,
    format_metrics_table,
    plot_confusion_matrix,
    plot_misclassified,
    plot_training_curves,
    write_report,
)
from effnet.report.files import atomic_write_text

THREE = ["cat", "dog", "<script>alert(1)</script>"]
FORTY = [f"species_{i:02d}" for i in range(38)] + ["a_very_long_folder_name_for_one_class_of_images", "x"]
RUN_INFO = {
    "model": "efficientnet_lite0",
    "dataset": "data/pets & <friends>",
    "epochs": 5,
    "batch size": 32,
    "training time (s)": 63.2,
    "best epoch": 4,
    "image size": "224x224",
    "seed": 0,
}


def make_history(epochs: int, validation: bool = True) -> list[dict]:
    """``epochs`` rows; with more than 2 epochs the last one overfits, so the best epoch is epochs - 1."""
    rows = []
    for epoch in range(1, epochs + 1):
        progress = epoch / epochs
        overfit = 0.2 if epoch == epochs and epochs > 2 else 0.0
        rows.append(
            {
                "epoch": epoch,
                "train_loss": 2.0 * (1 - progress) + 0.15,
                "train_accuracy": 0.35 + 0.6 * progress,
                "val_loss": 1.8 * (1 - progress) + 0.3 + overfit if validation else None,
                "val_accuracy": 0.3 + 0.55 * progress - overfit if validation else None,
                "lr": float(0.005 * 0.5 * (1 + np.cos(np.pi * progress))),
                "seconds": 12.5 + epoch * 0.1,
            }
        )
    return rows


def make_metrics(labels: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        support = int(rng.integers(15, 60))
        correct = int(support * rng.uniform(0.55, 0.98))
        confusion[i, i] = correct
        for _ in range(support - correct):
            j = (i + int(rng.choice([-1, 1, 2, int(rng.integers(0, n))]))) % n
            confusion[i, j if j != i else (i + 1) % n] += 1
    true_total = confusion.sum(1)
    predicted_total = confusion.sum(0)
    per_class = {}
    for i, label in enumerate(labels):
        precision = confusion[i, i] / predicted_total[i] if predicted_total[i] else 0.0
        recall = confusion[i, i] / true_total[i]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(true_total[i]),
        }
    return {
        "loss": 0.4321,
        "accuracy": float(np.trace(confusion) / confusion.sum()),
        "num_images": int(confusion.sum()),
        "top_k_accuracy": {"1": float(np.trace(confusion) / confusion.sum()), "5": 0.9876},
        "labels": labels,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
    }


def write_images(folder: Path) -> list[Path]:
    """Real photos and digits as files, in a few formats and sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "chelsea.jpg": data.chelsea(),
        "astronaut.png": data.astronaut(),
        "coffee.webp": data.coffee(),
        "camera.png": data.camera(),
        "rocket.jpg": data.rocket(),
        "coins.bmp": data.coins(),
    }
    digits = load_digits().images[:2]  # 8x8, values 0..16
    for i, digit in enumerate(digits):
        images[f"digit_{i}.png"] = (digit * 255 / 16).astype(np.uint8)
    paths = []
    for name, array in images.items():
        path = folder / name
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def make_misclassified(image_paths: list[Path], labels: list[str], count: int, missing: Path) -> list[dict]:
    rng = np.random.default_rng(1)
    entries = []
    for i in range(count):
        true, predicted = rng.choice(len(labels), 2, replace=False)
        entries.append(
            {
                "path": str(image_paths[i % len(image_paths)]),
                "true": labels[true],
                "predicted": labels[predicted],
                "probability": float(rng.uniform(0.3, 0.99)),
            }
        )
    entries.append({"path": str(missing), "true": labels[0], "predicted": labels[-1], "probability": 0.97})
    return entries


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("images"))


def assert_png(path: Path, min_size: tuple[int, int] = (300, 100), max_side: int = 4000) -> tuple[int, int]:
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        assert np.asarray(image.convert("L")).std() > 1.0, f"{path.name} is blank"
    assert width >= min_size[0] and height >= min_size[1], (path.name, width, height)
    assert max(width, height) <= max_side, (path.name, width, height)
    return width, height


def assert_no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert leftovers == []


def test_report_three_classes(tmp_path, image_paths):
    metrics = make_metrics(THREE)
    history = make_history(5)
    wrong = make_misclassified(image_paths, THREE, 7, tmp_path / "gone.jpg")
    run_dir = tmp_path / "run"
    report = write_report(run_dir, RUN_INFO, history, metrics, wrong)

    assert report == run_dir / "report.html"
    for name in ("training_curves.png", "confusion_matrix.png", "misclassified.png"):
        assert_png(run_dir / name)
    assert (run_dir / "training_curves.svg").is_file()
    assert_no_temp_files(run_dir)

    page = report.read_text(encoding="utf-8")
    # the user's strings are escaped: no live markup from labels, paths or run settings
    assert "<script" not in page.lower()
    assert "<friends>" not in page
    assert html.escape(THREE[2]) in page
    assert "efficientnet_lite0 on data/pets &amp; &lt;friends&gt;" in page
    # no external assets, the plots referenced by relative name
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for name in ("training_curves.png", "confusion_matrix.png", "misclassified.png"):
        assert f'src="{name}"' in page
    # the numbers
    assert f"{metrics['accuracy']:.2%}" in page
    assert "98.76%" in page  # top-5
    assert f"{metrics['macro_f1']:.4f}" in page
    assert f">{metrics['num_images']}<" in page
    assert "63.2 s" in page
    for row in history:
        assert f"{row['train_loss']:.4f}" in page and f"{row['val_accuracy']:.2%}" in page
    assert page.count('<tr class="best">') == 1
    # per-class rows, weakest F1 first
    positions = []
    for label in THREE:
        scores = metrics["per_class"][label]
        match = re.search(
            rf"<td class=\"label\">{re.escape(html.escape(label))}</td>"
            rf"<td class=\"num\">{scores['precision']:.3f}</td>"
            rf"<td class=\"num\">{scores['recall']:.3f}</td>"
            rf"<td class=\"num[ a-z]*\">{scores['f1']:.3f}</td>",
            page,
        )
        assert match, label
        positions.append((scores["f1"], match.start()))
    assert [p for _, p in sorted(positions)] == sorted(p for _, p in positions)
    # the misclassified list names the missing file too
    assert html.escape(str(tmp_path / "gone.jpg")) in page


def test_report_forty_classes_one_epoch(tmp_path, image_paths):
    metrics = make_metrics(FORTY, seed=3)
    wrong = make_misclassified(image_paths, FORTY, 30, tmp_path / "gone.jpg")
    info = {"model_name": "efficientnet_b0", "data_dir": "folders", "best_epoch": 1}
    report = write_report(tmp_path, info, make_history(1), metrics, wrong)

    width, height = assert_png(tmp_path / "confusion_matrix.png", min_size=(800, 800))
    assert 0.7 < width / height < 1.4
    assert_png(tmp_path / "misclassified.png", min_size=(800, 600))  # 24 tiles, not 31
    assert_no_temp_files(tmp_path)
    page = report.read_text(encoding="utf-8")
    assert "efficientnet_b0 on folders" in page
    for label in FORTY:
        assert f'<td class="label">{label}</td>' in page
    assert "the 24 most confident" not in page  # the plot's note; the page lists all of them
    assert page.count("<code>") == 31


def test_report_without_validation_or_mistakes(tmp_path):
    metrics = make_metrics(THREE[:2])
    report = write_report(tmp_path, {}, make_history(3, validation=False), metrics, [])
    page = report.read_text(encoding="utf-8")
    assert "No misclassified images" in page
    assert '<tr class="best">' not in page
    for name in ("training_curves.png", "confusion_matrix.png", "misclassified.png"):
        assert_png(tmp_path / name, min_size=(200, 100))


def test_report_with_empty_history(tmp_path):
    report = write_report(tmp_path, {"model": "m"}, [], make_metrics(THREE), [])
    assert "No per-epoch history" in report.read_text(encoding="utf-8")
    assert_png(tmp_path / "training_curves.png")


@pytest.mark.parametrize(("epochs", "validation"), [(1, True), (1, False), (60, True)])
def test_training_curves(tmp_path, epochs, validation):
    path = plot_training_curves(make_history(epochs, validation), tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    assert_png(path, min_size=(800, 300))
    assert (tmp_path / "curves.svg").is_file()
    assert_no_temp_files(tmp_path)


def test_best_validation_epoch():
    assert best_validation_epoch(make_history(5)) == 4
    assert best_validation_epoch(make_history(1)) == 1
    assert best_validation_epoch(make_history(5, validation=False)) is None
    assert best_validation_epoch([]) is None
    tied = [
        {"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.5},
        {"epoch": 2, "val_accuracy": 0.9, "val_loss": 0.4},
        {"epoch": 3, "val_accuracy": 0.9, "val_loss": 0.4},
    ]
    assert best_validation_epoch(tied) == 2  # lower loss breaks the tie; the earlier epoch wins a full tie


@pytest.mark.parametrize("n", [2, 12, 100])
def test_confusion_matrix_sizes(tmp_path, n):
    labels = [f"class {i}" for i in range(n)]
    path = plot_confusion_matrix(make_metrics(labels)["confusion_matrix"], labels, tmp_path / "cm.png")
    width, height = assert_png(path, min_size=(400, 300), max_side=2600)
    assert 0.7 < width / height < 1.6


def test_confusion_matrix_raw_counts_and_empty_rows(tmp_path):
    confusion = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 9]])  # a class with no images
    assert_png(plot_confusion_matrix(confusion, THREE, tmp_path / "raw.png", normalize=False))
    assert_png(plot_confusion_matrix(confusion, THREE, tmp_path / "normalized.png"))


def test_confusion_matrix_rejects_mismatched_labels(tmp_path):
    with pytest.raises(ValueError, match=r"confusion: expected a 2x2 matrix"):
        plot_confusion_matrix([[1, 2, 3]] * 3, ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(ValueError, match=r"cm\.jpg does not end in \.png"):
        plot_confusion_matrix([[1]], ["a"], tmp_path / "cm.jpg")


def test_misclassified_grid(tmp_path, image_paths):
    wrong = make_misclassified(image_paths, THREE, 9, tmp_path / "gone.jpg")
    wrong.append({"path": str(image_paths[0].parent), "true": "cat", "predicted": "dog", "probability": None})
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(image_paths[0].read_bytes()[:200])
    wrong.append({"path": str(truncated), "true": "cat", "predicted": "dog", "probability": 0.5})
    width, height = assert_png(plot_misclassified(wrong, tmp_path / "grid.png", columns=4))
    assert height > width  # 12 tiles in rows of 4
    assert_png(plot_misclassified(wrong, tmp_path / "three.png", max_images=3), min_size=(300, 150))
    assert_no_temp_files(tmp_path)


def test_misclassified_empty(tmp_path):
    assert_png(plot_misclassified([], tmp_path / "none.png"), min_size=(300, 80))
    with pytest.raises(ValueError, match="max_images"):
        plot_misclassified([], tmp_path / "none.png", max_images=0)


def test_metrics_table_lists_every_class():
    metrics = make_metrics(FORTY)
    table = format_metrics_table(metrics)
    lines = table.splitlines()
    assert lines[0] == f"accuracy  {metrics['accuracy']:.2%}"
    assert "top-5     98.76%" in table
    assert f"macro F1  {metrics['macro_f1']:.4f}" in table
    for label in FORTY:
        scores = metrics["per_class"][label]
        row = next(line for line in lines if line.split()[:1] == [label])
        assert row.split()[1:] == [
            f"{scores['precision']:.3f}",
            f"{scores['recall']:.3f}",
            f"{scores['f1']:.3f}",
            str(scores["support"]),
        ]


def test_metrics_table_tolerates_missing_values():
    table = format_metrics_table({"accuracy": 0.5, "labels": ["a"], "per_class": {}})
    assert "accuracy  50.00%" in table and "loss      -" in table
    assert table.splitlines()[-1].split() == ["a", "-", "-", "-", "-"]


def test_plots_leave_the_matplotlib_backend_alone(tmp_path):
    backend = matplotlib.get_backend()
    plot_training_curves(make_history(2), tmp_path / "curves.png")
    assert matplotlib.get_backend() == backend


def test_atomic_write_cleans_up_and_respects_umask(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "a.html", "<p>one</p>")
    assert target.read_text() == "<p>one</p>"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(tmp_path / "a.html", "<p>two</p>")
    assert target.read_text() == "<p>one</p>"
    assert_no_temp_files(tmp_path)
