"""`effnet train` / `effnet evaluate` for detection data: thin shells over `effnet.object_detector` (what a
segmenter run does alike is in `effnet.cli.dense`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnet.cli import dense

RUN_FILES = (*dense.RUN_FILES, "ap_per_class.png", "detections.png")


def is_detection_run(args: argparse.Namespace) -> bool:
    """Whether ``effnet train`` was asked for a detector: ``--task detection``, a detector ``--model`` or
    detection data (a CSV file or a folder with annotations/)."""
    if args.task != "auto":
        return args.task == "detection"
    from effnet.object_detector.folders import is_detection_data

    return args.model.startswith(("efficientdet", "ssdlite")) or is_detection_data(args.data_dir)


def cmd_train_detector(args: argparse.Namespace) -> int:
    return dense.train_run(args, "detector", RUN_FILES, _train)


def _train(args: argparse.Namespace) -> tuple:
    from effnet import object_detector
    from effnet.object_detector.folders import load_detection_data

    model = "efficientdet_lite0" if args.model == "efficientnet_lite0" else args.model  # the default
    return dense.create_from_args(args, load_detection_data, object_detector.create, model)


def is_detector_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder of `effnet.object_detector`."""
    from effnet.object_detector.detector import FORMAT
    from effnet.training.run_folder import holds_run_of

    return holds_run_of(path, FORMAT)


def cmd_evaluate_detector(args: argparse.Namespace) -> int:
    from effnet import object_detector
    from effnet.object_detector.folders import load_evaluation_data

    detector = object_detector.load(args.model)
    return dense.print_evaluation(args, detector.evaluate(load_evaluation_data(args.data_dir)))


def export_detector_run(args: argparse.Namespace, run: Path, formats: list[str], out: Path) -> int:
    """`effnet export` of a detector run: its .tflite / .onnx files with the post-processing inside; int8
    calibrates on the run's training images (or --calibration, a folder of images)."""
    from effnet import object_detector
    from effnet.data.listing import list_images

    quantization = dense.export_quantization(args, "detector")
    detector = object_detector.load(run)
    images = None
    if quantization == "int8":
        if args.calibration:
            images = list_images(str(args.calibration)).images[: args.calibration_images]
        else:
            images = dense.calibration_paths(run, args.calibration_images)
        if not images:
            raise ValueError(
                f"{run}: no {dense.SPLITS_FILE} to calibrate int8 on; pass --calibration IMAGE_FOLDER"
            )
    written = detector.export(
        out, export_format=[*formats, "label"], quantization_config=quantization, representative_data=images
    )
    return dense.print_written(written)
