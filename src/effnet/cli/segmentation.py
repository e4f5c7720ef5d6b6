"""`effnet train` / `evaluate` / `export` for segmentation data: thin shells over `effnet.image_segmenter`
(what a detector run does alike is in `effnet.cli.dense`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnet.cli import dense

RUN_FILES = (*dense.RUN_FILES, "iou_per_class.png", "overlays.png")
SEGMENTER_PREFIXES = ("lraspp", "deeplabv3")


def is_segmentation_run(args: argparse.Namespace) -> bool:
    """Whether ``effnet train`` was asked for a segmenter: ``--task segmentation``, a segmenter ``--model``
    or segmentation data (a folder with masks/)."""
    if args.task != "auto":
        return args.task == "segmentation"
    from effnet.image_segmenter.folders import is_segmentation_data

    return args.model.startswith(SEGMENTER_PREFIXES) or is_segmentation_data(args.data_dir)


def cmd_train_segmenter(args: argparse.Namespace) -> int:
    return dense.train_run(args, "segmenter", RUN_FILES, _train)


def _train(args: argparse.Namespace) -> tuple:
    from effnet import image_segmenter
    from effnet.image_segmenter.folders import load_segmentation_data
    from effnet.models.segmentation.spec import DEFAULT_SEGMENTER

    model = DEFAULT_SEGMENTER if args.model == "efficientnet_lite0" else args.model  # the default
    return dense.create_from_args(args, load_segmentation_data, image_segmenter.create, model)


def is_segmenter_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder of `effnet.image_segmenter`."""
    from effnet.image_segmenter.segmenter import FORMAT
    from effnet.training.run_folder import holds_run_of

    return holds_run_of(path, FORMAT)


def cmd_evaluate_segmenter(args: argparse.Namespace) -> int:
    from effnet import image_segmenter
    from effnet.image_segmenter.folders import load_evaluation_data

    segmenter = image_segmenter.load(args.model)
    return dense.print_evaluation(args, segmenter.evaluate(load_evaluation_data(args.data_dir)))


def export_segmenter_run(args: argparse.Namespace, run: Path, formats: list[str], out: Path) -> int:
    """`effnet export` of a segmenter run: .tflite / .onnx files (per-pixel logits); int8 calibrates on the
    run's training images (or --calibration, a folder with images/ and masks/)."""
    from effnet import image_segmenter
    from effnet.data.segmentation import SegmentationData, SegmentationSample

    quantization = dense.export_quantization(args, "segmenter")
    segmenter = image_segmenter.load(run)
    data = None
    if quantization == "int8":
        if args.calibration:
            from effnet.image_segmenter.folders import load_evaluation_data

            data = load_evaluation_data(args.calibration)
        elif (paths := dense.calibration_paths(run, args.calibration_images)) is not None:
            # calibration reads the images only: each sample's mask stays unread
            data = SegmentationData(
                [SegmentationSample(Path(p), Path(p), 0, 0) for p in paths], segmenter.label_names
            )
        if data is None or not len(data):
            raise ValueError(
                f"{run}: no {dense.SPLITS_FILE} to calibrate int8 on; pass --calibration DATA_FOLDER"
            )
    written = segmenter.export(
        out, export_format=[*formats, "label"], quantization_config=quantization, representative_data=data
    )
    return dense.print_written(written)
