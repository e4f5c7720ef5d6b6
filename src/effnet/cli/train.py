"""`effnet train DATA_DIR` and `effnet evaluate RUN_DIR|FILE DATA_DIR`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

# the parser needs only these; each command imports what it runs (torch ...) itself, so --help starts fast
from effnet.cli.argument_types import fraction, non_negative_int, positive_float, positive_int
from effnet.cli.output import printable
from effnet.cli.runs import add_run_folder_arguments, add_run_option_arguments, run_options, run_training
from effnet.image_classifier.hparams import FINE_TUNING_EPOCHS, FROZEN_EPOCHS, HParams
from effnet.object_detector.hparams import FINE_TUNING_EPOCHS as DETECTOR_FINE_TUNING_EPOCHS
from effnet.object_detector.hparams import FROZEN_EPOCHS as DETECTOR_FROZEN_EPOCHS

if TYPE_CHECKING:
    pass

RUN_FILES = ("config.json", "model.safetensors", "metrics.json", "report.html", "skipped.txt")


def misclassified_examples(paths: list[str], metrics: dict, labels_true: list[int]) -> list[dict]:
    names = metrics["labels"]
    return [
        {"path": path, "true": names[t], "predicted": names[p], "probability": c}
        for path, t, p, c in zip(
            paths, labels_true, metrics["predictions"], metrics["confidences"], strict=True
        )
        if t != p
    ]


def write_run_report(out: Path, classifier, data, metrics: dict, info: dict) -> Path | None:
    """metrics.json, and report.html with its plots (training curves, confusion matrix, mistakes)."""
    from effnet.checkpoint import write_json
    from effnet.report import write_report

    wrong = (
        misclassified_examples(data.paths, metrics, data.labels.tolist())
        if len(data) == metrics["num_images"]
        else []
    )
    saved = {k: v for k, v in metrics.items() if k not in ("predictions", "confidences")}
    write_json(out / "metrics.json", saved)
    return write_report(out, info, classifier.history, saved, wrong)


def _load_data(args: argparse.Namespace):
    """(train, validation, test, description, folder entries left out of the listing): a class-per-folder
    directory split here, or the splits of a directory packed by `effnet data pack`."""
    from effnet.data.shards import is_shard_dir, load_split
    from effnet.data.splits import split_data
    from effnet.image_classifier import DataLoader

    if is_shard_dir(args.data_dir):
        train, val, test = (load_split(args.data_dir, s) for s in ("train", "validation", "test"))
        return train, val, test, f"{args.data_dir}: packed shards, {train.num_classes} classes", []
    data = DataLoader.from_folder(args.data_dir, seed=args.seed)
    train, val, test = split_data(data, args.val_split, args.test_split, args.seed)
    description = f"{args.data_dir}: {len(data)} images, {data.num_classes} classes"
    return train, val, test, description, data.left_out


SKIPPED_FILE = "skipped.txt"


def write_skipped(out: Path, left_out: list, parts: list) -> list[str]:
    """RUN/skipped.txt: every file of the data folder the run did not use, one ``path: reason`` line each
    (the log names only the first few). Removes a stale one when nothing was skipped. Returns the lines."""
    from effnet.checkpoint import write_text

    lines = [f"{entry.path}: {entry.reason}" for entry in left_out]
    lines += sorted({f"{s.path}: cannot decode ({s.reason})" for part in parts if part for s in part.skipped})
    path = out / SKIPPED_FILE
    if lines:
        write_text(path, "\n".join(printable(line) for line in lines) + "\n")
    else:
        path.unlink(missing_ok=True)
    return lines


def _used(part) -> list[str]:
    """The paths of a split that were decoded (skipped files left out), for splits.json."""
    if not part:
        return []
    skipped = {s.path for s in part.skipped}
    return [path for path in part.paths if path not in skipped]


def _hparam_overrides(args: argparse.Namespace) -> dict:
    freeze = {"auto": "auto", "yes": True, "no": False}[args.freeze_bn]
    values = {
        "dropout_rate": args.dropout_rate,
        "drop_path_rate": args.drop_path_rate,
        "early_stopping_patience": args.early_stopping,
        "lr_base_batch": args.lr_base_batch,
        "num_workers": args.workers,
        "probe_first": not args.no_probe,
    }
    return {"freeze_bn": freeze, **{k: v for k, v in values.items() if v is not None}}


def cmd_train(args: argparse.Namespace) -> int:
    from effnet import distributed
    from effnet.cli.detection import cmd_train_detector, is_detection_run
    from effnet.cli.segmentation import cmd_train_segmenter, is_segmentation_run

    if is_segmentation_run(args):
        return cmd_train_segmenter(args)
    if is_detection_run(args):
        return cmd_train_detector(args)

    args.fine_tune = args.fine_tune or args.from_scratch  # from scratch trains the whole network
    if distributed.world_size() > 1 and not args.fine_tune:
        raise ValueError(
            "torchrun runs --fine-tune only: a frozen backbone trains a linear head in seconds on one process"
        )
    context = distributed.init(args.device) if args.fine_tune else distributed.DistContext()
    return run_training(
        args, context, RUN_FILES, lambda: _train(args, context), lambda trained: _report(args, *trained)
    )


def _train(args: argparse.Namespace, context) -> tuple:
    """(classifier, train, validation, test, folder entries left out, seconds) of a classifier trained as
    ``args`` say."""
    from effnet.image_classifier import ModelSpec, create
    from effnet.image_classifier.model_spec import get as get_spec

    train, val, test, description, left_out = _load_data(args)
    if context.is_main:
        print(
            f"{description} (train {len(train)}, validation {len(val) if val else 0}, "
            f"test {len(test) if test else 0})"
        )
    spec = get_spec(args.model)
    if args.image_size is not None:
        spec = ModelSpec(spec.name, spec.config, (args.image_size, args.image_size))
    began = time.perf_counter()
    classifier = create(
        train,
        model_spec=spec,
        validation_data=val,
        batch_size=args.batch_size,
        epochs=args.epochs,
        train_whole_model=args.fine_tune,
        pretrained=False if args.from_scratch else None,
        use_augmentation=args.augment,
        learning_rate=args.learning_rate,
        seed=args.seed,
        model_dir=Path(args.out),
        run_options=run_options(args),
        **_hparam_overrides(args),
    )
    return classifier, train, val, test, left_out, time.perf_counter() - began


def _report(args: argparse.Namespace, classifier, train, val, test, left_out, seconds: float) -> int:
    """Print (and write to the run folder) how the trained classifier does on the test or validation split."""
    from effnet.checkpoint import write_json
    from effnet.image_classifier import DataLoader
    from effnet.report import format_metrics_table

    out = Path(args.out)
    if not isinstance(train, DataLoader):  # packed shards: no file paths to list in a report
        best = classifier.history[classifier.best_epoch - 1] if classifier.history else {}
        accuracy = best.get("val_accuracy")
        shown = f"validation accuracy {accuracy:.4f}; " if accuracy is not None else ""
        print(f"trained in {seconds:.1f} s; {shown}model and labels.txt in {out}")
        return 0
    evaluation = test or val
    metrics = classifier.evaluate(evaluation, detailed=True) if evaluation is not None else None
    # after evaluating: the test split's unreadable files are found when it is decoded
    write_json(out / "splits.json", {"train": _used(train), "validation": _used(val), "test": _used(test)})
    skipped = write_skipped(out, left_out, [train, val, test])
    if skipped:
        print(
            f"{len(skipped)} files skipped (unreadable or over the decode budget); all listed in "
            f"{out / SKIPPED_FILE}"
        )
    if metrics is None:
        print(f"trained in {seconds:.1f} s; saved to {out} (no test or validation split to evaluate on)")
        return 0
    info = {
        "model": classifier.model_spec.name,
        "dataset": str(args.data_dir),
        "evaluated on": "test split" if test else "validation split",
        "images (train / val / test)": " / ".join(str(len(d)) if d else "0" for d in (train, val, test)),
        "mode": "from scratch"
        if args.from_scratch
        else "fine-tuning"
        if args.fine_tune
        else "frozen backbone",
        "epochs": classifier.hparams.epochs,
        "best epoch": classifier.best_epoch,
        "image size": "x".join(map(str, classifier.preprocessing.input_size)),
        "training time (s)": round(seconds, 1),
        "seed": args.seed,
    }
    report = write_run_report(out, classifier, evaluation, metrics, info)
    print(format_metrics_table(metrics))
    print(f"\ntrained in {seconds:.1f} s; model, labels.txt, metrics.json and {report.name} in {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from effnet.checkpoint import finite_or_null
    from effnet.cli.detection import cmd_evaluate_detector, is_detector_run
    from effnet.image_classifier import DataLoader, load

    target = Path(args.model)
    if is_detector_run(target):
        return cmd_evaluate_detector(args)
    from effnet.cli.segmentation import cmd_evaluate_segmenter, is_segmenter_run

    if is_segmenter_run(target):
        return cmd_evaluate_segmenter(args)
    data = DataLoader.from_folder(args.data_dir, shuffle=False)
    if target.is_dir():
        classifier = load(target)
        metrics = classifier.evaluate(data, detailed=True)
        metrics = {k: v for k, v in metrics.items() if k not in ("predictions", "confidences")}
        if args.json:
            print(json.dumps(finite_or_null(metrics), indent=2))
        else:
            from effnet.report import format_metrics_table

            print(format_metrics_table(metrics))
        return 0
    from effnet.runtime import load as load_runtime

    predictor = load_runtime(target)
    if predictor.metadata is not None and predictor.metadata.output == "features":
        return _evaluate_embedding_file(predictor, args)
    result = predictor.evaluate(data)
    if args.json:
        print(json.dumps(finite_or_null(result), indent=2))
    else:
        print(f"{target.name}: accuracy {result['accuracy']:.4f} on {result['num_images']} images")
    return 0


def _evaluate_embedding_file(predictor, args: argparse.Namespace) -> int:
    """An exported embedder: verification accuracy on pairs sampled from DATA (held-out identities) and,
    for a .rknn file, the mean cosine of its embeddings to the float model it was built from."""
    from effnet.checkpoint import finite_or_null
    from effnet.data import ImageDataset
    from effnet.embedder.exporting import measure_exported

    result = measure_exported(predictor, ImageDataset.from_folder(args.data_dir, shuffle=False))
    if args.json:
        print(json.dumps(finite_or_null(result), indent=2))
        return 0
    name = Path(predictor.path).name
    verification = result["verification"]
    line = f"{name}: verification accuracy {verification['accuracy']:.4f}"
    if "mean_cosine" in result:
        line += f", mean cosine to float {result['mean_cosine']:.4f} (min {result['min_cosine']:.4f})"
    print(line + f" on {result['num_images']} images")
    return 0


def add_scale_out_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of multi-process / mixed-precision / resumable fine-tuning (`effnet train`)."""
    g = add_run_option_arguments(
        p, "scale-out (fine-tuning; run under `torchrun --nproc-per-node N -m effnet ...`)"
    )
    g.add_argument(
        "--lr-base-batch",
        type=positive_int,
        help="scale --learning-rate linearly by batch-size / this (default: no scaling)",
    )
    g.add_argument(
        "--early-stopping",
        type=positive_int,
        metavar="EPOCHS",
        help="stop after EPOCHS without a better validation accuracy (default: never)",
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier on a folder of images (one sub-folder per class), a detector on "
        "Pascal VOC / Model Maker CSV detection data, or a segmenter on images/ + masks/ folders",
    )
    p.add_argument(
        "data_dir",
        help="folder with one sub-folder of images per class, or shards from `effnet data pack`; for a "
        "detector: a VOC folder (images/, annotations/, label_map.txt), a folder with train/ and test/ VOC "
        "folders, or a Model Maker CSV file; for a segmenter: a folder with images/ and masks/ (index or VOC "
        "palette PNGs), or train/ and test/ such folders",
    )
    p.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="model to train (default: %(default)s; for detection data: efficientdet_lite0; for "
        "segmentation data: lraspp_efficientnet_lite0)",
    )
    p.add_argument(
        "--task",
        choices=("auto", "classification", "detection", "segmentation"),
        default="auto",
        help="default: %(default)s (detection / segmentation for such a --model or data, else "
        "classification)",
    )
    p.add_argument("--out", required=True, help="run folder: model, labels.txt, metrics.json, report.html")
    p.add_argument(
        "--epochs",
        type=positive_int,
        help=f"epochs (default: {FROZEN_EPOCHS} with a frozen backbone, {FINE_TUNING_EPOCHS} with "
        f"--fine-tune; detectors: {DETECTOR_FROZEN_EPOCHS} and {DETECTOR_FINE_TUNING_EPOCHS})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help=f"batch size (default: {HParams.batch_size}; detectors: 8)",
    )
    p.add_argument(
        "--learning-rate",
        type=positive_float,
        help=f"SGD learning rate (default: {HParams.learning_rate}; detectors: 0.08)",
    )
    p.add_argument("--fine-tune", action="store_true", help="train the whole network, not only the head")
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="random initialization instead of pretrained weights; trains the whole network (implies "
        "--fine-tune; expect much lower accuracy on small datasets)",
    )
    p.add_argument("--augment", action="store_true", help="random crops and flips")
    p.add_argument(
        "--val-split", type=fraction, default=0.1, help="validation fraction (default: %(default)s)"
    )
    p.add_argument("--test-split", type=fraction, default=0.1, help="test fraction (default: %(default)s)")
    p.add_argument("--image-size", type=positive_int, help="train at this resolution (default: the model's)")
    p.add_argument(
        "--seed", type=non_negative_int, default=HParams.seed, help="random seed (default: %(default)s)"
    )
    add_run_folder_arguments(p)
    p.add_argument(
        "--dropout-rate",
        type=fraction,
        help=f"dropout before the classifier (default: {HParams.dropout_rate})",
    )
    p.add_argument(
        "--drop-path-rate", type=fraction, help="stochastic depth when fine-tuning (default: model's)"
    )
    p.add_argument(
        "--freeze-bn",
        choices=("auto", "yes", "no"),
        default="auto",
        help="keep BatchNorm statistics fixed when fine-tuning (default: %(default)s: when starting from "
        "pretrained weights)",
    )
    p.add_argument("--no-probe", action="store_true", help="fine-tune without fitting the head first")
    p.add_argument(
        "--workers", type=non_negative_int, help="decoding processes per training process (default: CPUs)"
    )
    add_scale_out_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="evaluate a trained run folder or an exported .onnx/.tflite/.rknn file"
    )
    p.add_argument(
        "model",
        help="run folder written by `effnet train`, or an exported .onnx / .tflite / .rknn file (a .rknn "
        "file runs in rknn-toolkit2's simulator; an embedder file reports verification accuracy)",
    )
    p.add_argument(
        "data_dir",
        help="folder with one sub-folder of images per class; for a detector run: detection data (its "
        "test part)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)
