"""What ``effnet train`` / ``evaluate`` / ``export`` do alike for a detector and a segmenter run: the flags
they refuse, the data parts and the ``create()`` call from the flags, the run's report and metrics.json, the
splits file int8 calibration reads back, recognising a run folder, and printing metrics and exported files."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from effnet.cli.runs import run_options, run_training

SPLITS_FILE = "splits.json"  # the run's image paths per part: the default int8 calibration images
# what a run writes besides the task's plots (removed by --overwrite)
RUN_FILES = (
    "config.json", "model.safetensors", "labels.txt", "history.json", "metrics.json", "report.html",
    "training_curves.png", SPLITS_FILE,
)  # fmt: skip
QUANTIZATIONS = {"int8": "int8", "fp16": "fp16", "none": None}  # --quantize -> quantization_config


def format_metrics(metrics: dict) -> str:
    """The metrics as an aligned two-column table (undefined values, -1 or NaN, shown as n/a)."""
    width = max(len(name) for name in metrics)
    return "\n".join(
        f"{name:<{width}}  {'n/a' if value != value or value < 0 else f'{value:.4f}'}"
        for name, value in metrics.items()
    )


def train_run(
    args: argparse.Namespace,
    noun: str,
    run_files: Sequence[str],
    train: Callable[[argparse.Namespace], tuple],
) -> int:
    """``effnet train`` of a ``noun`` ("detector", "segmenter"): ``train(args)`` in the run folder, then the
    report. A classifier's flags are refused."""
    from effnet import distributed

    if args.from_scratch or args.augment:
        flag = "--from-scratch" if args.from_scratch else "--augment"
        raise ValueError(f"{flag} is for classifiers; a {noun} trains from ImageNet backbones, with flips")
    context = distributed.DistContext()
    return run_training(
        args, context, run_files, lambda: train(args), lambda trained: write_run_report(args, *trained)
    )


def create_from_args(
    args: argparse.Namespace, load_data: Callable[..., tuple], create: Callable[..., Any], model: str
) -> tuple:
    """(model, train, validation, test, seconds): the data parts of ``args.data_dir`` (``load_data``), their
    sizes printed, and ``create`` called with the flags."""
    train, validation, test = load_data(args.data_dir, args.val_split, args.test_split, args.seed)
    sizes = [len(part) if part is not None else 0 for part in (train, validation, test)]
    print(
        f"{args.data_dir}: {len(train.label_names)} classes; train {sizes[0]}, validation {sizes[1]}, "
        f"test {sizes[2]}"
    )
    settings = {"input_size": args.image_size, "learning_rate": args.learning_rate}
    began = time.perf_counter()
    trained = create(
        train,
        model_spec=model,
        validation_data=validation,
        epochs=args.epochs,
        batch_size=args.batch_size,
        train_whole_model=args.fine_tune,
        seed=args.seed,
        model_dir=Path(args.out),
        run_options=run_options(args),
        **{k: v for k, v in settings.items() if v is not None},
    )
    return trained, train, validation, test, time.perf_counter() - began


def write_run_report(
    args: argparse.Namespace, trained: Any, train: Any, validation: Any, test: Any, seconds: float
) -> int:
    """After training: the splits file, then the model's report and metrics.json on the test data (else the
    validation data), its metrics printed."""
    from effnet.checkpoint import write_json

    out = Path(args.out)
    paths = {name: [str(s.path) for s in part.samples] if part is not None else []
             for name, part in (("train", train), ("validation", validation), ("test", test))}  # fmt: skip
    write_json(out / SPLITS_FILE, paths)
    evaluation = test if test is not None else validation
    if evaluation is None:
        print(f"trained in {seconds:.1f} s; saved to {out} (no test or validation data to evaluate on)")
        return 0
    info = {
        "dataset": str(args.data_dir),
        "evaluated on": "test data" if test is not None else "validation data",
        "images (train / val / test)": " / ".join(
            str(len(d)) if d else "0" for d in (train, validation, test)
        ),
        "mode": "fine-tuning" if args.fine_tune else "frozen backbone",
        "epochs": trained.hparams.epochs,
        "best epoch": trained.best_epoch,
        "training time (s)": round(seconds, 1),
        "seed": args.seed,
    }
    metrics, report = trained.write_report(out, evaluation, info)
    write_json(out / "metrics.json", metrics)
    print(format_metrics(metrics))
    print(f"\ntrained in {seconds:.1f} s; model, labels.txt, metrics.json and {report.name} in {out}")
    return 0


def print_evaluation(args: argparse.Namespace, metrics: dict) -> int:
    """``effnet evaluate``'s output: the metrics as JSON (``--json``) or as a table."""
    from effnet.checkpoint import finite_or_null

    print(json.dumps(finite_or_null(metrics), indent=2) if args.json else format_metrics(metrics))
    return 0


def export_quantization(args: argparse.Namespace, noun: str) -> str | None:
    """The ``quantization_config`` of ``--quantize`` for a ``noun``'s export (int8, fp16 or none)."""
    quantization = QUANTIZATIONS.get(args.quantize, "unsupported")
    if quantization == "unsupported":
        raise ValueError(f"--quantize {args.quantize}: a {noun} exports as int8, fp16 or none (float32)")
    return quantization


def calibration_paths(run: Path, limit: int) -> list[str] | None:
    """The first ``limit`` training images of ``run`` (its splits file), or None without one."""
    if not (run / SPLITS_FILE).is_file():
        return None
    return json.loads((run / SPLITS_FILE).read_text())["train"][:limit]


def print_written(written: dict[str, Path]) -> int:
    """One line per exported file: its format, path, size and, where it was checked, the check."""
    for name, path in written.items():
        check = getattr(path, "check", None)
        print(f"{name:7s} {path}  {path.stat().st_size / 1e6:.2f} MB" + (f"  ({check})" if check else ""))
    return 0
