"""`effnet train` / `evaluate` / `export` for segmentation data: thin shells over `effnet.image_segmenter`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from effnet.cli.runs import run_options, run_training

RUN_FILES = (
    "config.json", "model.safetensors", "labels.txt", "history.json", "metrics.json", "report.html",
    "training_curves.png", "iou_per_class.png", "overlays.png", "splits.json",
)  # fmt: skip
SPLITS_FILE = "splits.json"
SEGMENTER_PREFIXES = ("lraspp", "deeplabv3")


def is_segmentation_run(args: argparse.Namespace) -> bool:
    """Whether ``effnet train`` was asked for a segmenter: ``--task segmentation``, a segmenter ``--model``
    or segmentation data (a folder with masks/)."""
    if args.task != "auto":
        return args.task == "segmentation"
    from effnet.image_segmenter.folders import is_segmentation_data

    return args.model.startswith(SEGMENTER_PREFIXES) or is_segmentation_data(args.data_dir)


def format_metrics(metrics: dict) -> str:
    width = max(len(name) for name in metrics)
    return "\n".join(
        f"{name:<{width}}  {'n/a' if value != value else f'{value:.4f}'}" for name, value in metrics.items()
    )


def cmd_train_segmenter(args: argparse.Namespace) -> int:
    from effnet import distributed

    if args.from_scratch or args.augment:
        flag = "--from-scratch" if args.from_scratch else "--augment"
        raise ValueError(f"{flag} is for classifiers; a segmenter trains from ImageNet backbones, with flips")
    context = distributed.DistContext()
    return run_training(
        args, context, RUN_FILES, lambda: _train(args), lambda trained: _report(args, *trained)
    )


def _train(args: argparse.Namespace) -> tuple:
    from effnet import image_segmenter
    from effnet.image_segmenter.folders import load_segmentation_data
    from effnet.models.segmentation.spec import DEFAULT_SEGMENTER

    train, validation, test = load_segmentation_data(
        args.data_dir, args.val_split, args.test_split, args.seed
    )
    sizes = [len(part) if part is not None else 0 for part in (train, validation, test)]
    print(
        f"{args.data_dir}: {len(train.label_names)} classes; train {sizes[0]}, validation {sizes[1]}, "
        f"test {sizes[2]}"
    )
    model = DEFAULT_SEGMENTER if args.model == "efficientnet_lite0" else args.model  # the default
    settings = {"input_size": args.image_size, "learning_rate": args.learning_rate}
    began = time.perf_counter()
    segmenter = image_segmenter.create(
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
    return segmenter, train, validation, test, time.perf_counter() - began


def _report(args: argparse.Namespace, segmenter, train, validation, test, seconds: float) -> int:
    from effnet.checkpoint import finite_or_null, write_json

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
        "epochs": segmenter.hparams.epochs,
        "best epoch": segmenter.best_epoch,
        "training time (s)": round(seconds, 1),
        "seed": args.seed,
    }
    metrics, report = segmenter.write_report(out, evaluation, info)
    write_json(out / "metrics.json", finite_or_null(metrics))
    print(format_metrics(metrics))
    print(f"\ntrained in {seconds:.1f} s; model, labels.txt, metrics.json and {report.name} in {out}")
    return 0


def is_segmenter_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder of `effnet.image_segmenter`."""
    from effnet.image_segmenter.segmenter import CONFIG_FILE, FORMAT

    config = Path(path) / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False


def cmd_evaluate_segmenter(args: argparse.Namespace) -> int:
    from effnet import image_segmenter
    from effnet.checkpoint import finite_or_null
    from effnet.image_segmenter.folders import load_evaluation_data

    segmenter = image_segmenter.load(args.model)
    metrics = segmenter.evaluate(load_evaluation_data(args.data_dir))
    print(json.dumps(finite_or_null(metrics), indent=2) if args.json else format_metrics(metrics))
    return 0


def export_segmenter_run(args: argparse.Namespace, run: Path, formats: list[str], out: Path) -> int:
    """`effnet export` of a segmenter run: .tflite / .onnx files (per-pixel logits); int8 calibrates on the
    run's training images (or --calibration, a folder with images/ and masks/)."""
    from effnet import image_segmenter
    from effnet.data.segmentation import SegmentationData, SegmentationSample

    quantization = {"int8": "int8", "fp16": "fp16", "none": None}.get(args.quantize, "unsupported")
    if quantization == "unsupported":
        raise ValueError(f"--quantize {args.quantize}: a segmenter exports as int8, fp16 or none (float32)")
    segmenter = image_segmenter.load(run)
    data = None
    if quantization == "int8":
        if args.calibration:
            from effnet.image_segmenter.folders import load_evaluation_data

            data = load_evaluation_data(args.calibration)
        elif (run / SPLITS_FILE).is_file():
            paths = json.loads((run / SPLITS_FILE).read_text())["train"][: args.calibration_images]
            # calibration reads the images only: each sample's mask stays unread
            data = SegmentationData(
                [SegmentationSample(Path(p), Path(p), 0, 0) for p in paths], segmenter.label_names
            )
        if data is None or not len(data):
            raise ValueError(f"{run}: no {SPLITS_FILE} to calibrate int8 on; pass --calibration DATA_FOLDER")
    written = segmenter.export(
        out, export_format=[*formats, "label"], quantization_config=quantization, representative_data=data
    )
    for name, path in written.items():
        check = getattr(path, "check", None)
        print(f"{name:7s} {path}  {path.stat().st_size / 1e6:.2f} MB" + (f"  ({check})" if check else ""))
    return 0
