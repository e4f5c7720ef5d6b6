"""`effnet train` / `effnet evaluate` for detection data: thin shells over `effnet.object_detector`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from effnet.cli.runs import run_options, run_training

RUN_FILES = (
    "config.json", "model.safetensors", "labels.txt", "history.json", "metrics.json", "report.html",
    "training_curves.png", "ap_per_class.png", "detections.png", "splits.json",
)  # fmt: skip
SPLITS_FILE = "splits.json"  # the run's image paths per part: the default int8 calibration images


def is_detection_run(args: argparse.Namespace) -> bool:
    """Whether ``effnet train`` was asked for a detector: ``--task detection``, a detector ``--model`` or
    detection data (a CSV file or a folder with annotations/)."""
    if args.task != "auto":
        return args.task == "detection"
    from effnet.object_detector.folders import is_detection_data

    return args.model.startswith(("efficientdet", "ssdlite")) or is_detection_data(args.data_dir)


def format_metrics(metrics: dict) -> str:
    """The COCO metrics as an aligned two-column table (-1: undefined, shown as n/a)."""
    width = max(len(name) for name in metrics)
    return "\n".join(
        f"{name:<{width}}  {'n/a' if value < 0 else f'{value:.4f}'}" for name, value in metrics.items()
    )


def cmd_train_detector(args: argparse.Namespace) -> int:
    from effnet import distributed

    if args.from_scratch or args.augment:
        flag = "--from-scratch" if args.from_scratch else "--augment"
        raise ValueError(f"{flag} is for classifiers; a detector trains from ImageNet backbones, with flips")
    context = distributed.DistContext()
    return run_training(
        args, context, RUN_FILES, lambda: _train(args), lambda trained: _report(args, *trained)
    )


def _train(args: argparse.Namespace) -> tuple:
    from effnet import object_detector
    from effnet.object_detector.folders import load_detection_data

    train, validation, test = load_detection_data(args.data_dir, args.val_split, args.test_split, args.seed)
    sizes = [len(part) if part is not None else 0 for part in (train, validation, test)]
    print(
        f"{args.data_dir}: {len(train.label_names)} classes; train {sizes[0]}, validation {sizes[1]}, "
        f"test {sizes[2]}"
    )
    model = "efficientdet_lite0" if args.model == "efficientnet_lite0" else args.model  # the default
    settings = {"input_size": args.image_size, "learning_rate": args.learning_rate}
    began = time.perf_counter()
    detector = object_detector.create(
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
    return detector, train, validation, test, time.perf_counter() - began


def _report(args: argparse.Namespace, detector, train, validation, test, seconds: float) -> int:
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
        "epochs": detector.hparams.epochs,
        "best epoch": detector.best_epoch,
        "training time (s)": round(seconds, 1),
        "seed": args.seed,
    }
    metrics, report = detector.write_report(out, evaluation, info)
    write_json(out / "metrics.json", metrics)
    print(format_metrics(metrics))
    print(f"\ntrained in {seconds:.1f} s; model, labels.txt, metrics.json and {report.name} in {out}")
    return 0


def is_detector_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder of `effnet.object_detector`."""
    from effnet.object_detector.detector import CONFIG_FILE, FORMAT

    config = Path(path) / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False


def cmd_evaluate_detector(args: argparse.Namespace) -> int:
    from effnet import object_detector
    from effnet.checkpoint import finite_or_null
    from effnet.object_detector.folders import load_evaluation_data

    detector = object_detector.load(args.model)
    metrics = detector.evaluate(load_evaluation_data(args.data_dir))
    print(json.dumps(finite_or_null(metrics), indent=2) if args.json else format_metrics(metrics))
    return 0


def export_detector_run(args: argparse.Namespace, run: Path, formats: list[str], out: Path) -> int:
    """`effnet export` of a detector run: its .tflite / .onnx files with the post-processing inside; int8
    calibrates on the run's training images (or --calibration, a folder of images)."""
    from effnet import object_detector
    from effnet.data.listing import list_images

    quantization = {"int8": "int8", "fp16": "fp16", "none": None}.get(args.quantize, "unsupported")
    if quantization == "unsupported":
        raise ValueError(f"--quantize {args.quantize}: a detector exports as int8, fp16 or none (float32)")
    detector = object_detector.load(run)
    images = None
    if quantization == "int8":
        if args.calibration:
            images = list_images(str(args.calibration)).images
        elif (run / SPLITS_FILE).is_file():
            images = json.loads((run / SPLITS_FILE).read_text())["train"]
        if not images:
            raise ValueError(f"{run}: no {SPLITS_FILE} to calibrate int8 on; pass --calibration IMAGE_FOLDER")
        images = images[: args.calibration_images]
    written = detector.export(
        out, export_format=[*formats, "label"], quantization_config=quantization, representative_data=images
    )
    for name, path in written.items():
        check = getattr(path, "check", None)
        print(f"{name:7s} {path}  {path.stat().st_size / 1e6:.2f} MB" + (f"  ({check})" if check else ""))
    return 0
