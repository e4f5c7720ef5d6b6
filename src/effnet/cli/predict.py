"""`effnet predict IMAGE...`: top-k labels for image files, or the objects an exported detector finds."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from effnet.cli.argument_types import positive_int
from effnet.cli.output import printable

if TYPE_CHECKING:
    from effnet.predict import DetectionResult, ImageResult


def predict_exported(args: argparse.Namespace) -> list[ImageResult]:
    """Predictions of an exported .onnx/.tflite file through the runtime (no torch), batched."""
    from effnet.data.images import ImageDecodeError
    from effnet.predict import ImageResult
    from effnet.runtime import load

    predictor = load(args.model)
    return [
        ImageResult(image, error=str(result))
        if isinstance(result, ImageDecodeError)
        else ImageResult(image, result)
        for image, result in zip(args.images, predictor.predict_each(args.images, args.top), strict=True)
    ]


def cmd_predict(args: argparse.Namespace) -> int:
    if args.model.endswith((".onnx", ".tflite")):
        from effnet.runtime import load

        predictor = load(args.model)
        if predictor.is_detector:
            return detect_exported(predictor, args)
        if predictor.is_segmenter:
            return segment_exported(predictor, args)
        if args.draw:
            raise ValueError(
                f"--draw: {args.model} is a classifier, not an object detector or segmenter; drop --draw"
            )
        results = predict_exported(args)
        return report(results, args.json)
    if args.draw:
        raise ValueError(
            "--draw needs an exported detector or segmenter file (.onnx or .tflite), got --model "
            f"{args.model}"
        )
    from effnet.predict import load_model, predict_images

    model = load_model(args.model, args.weights)
    results = predict_images(model, args.images, top_k=args.top)
    return report(results, args.json)


def detect_exported(predictor, args: argparse.Namespace) -> int:
    """Detections of an exported detector file (`effnet.predict.detect_images`), printed; with ``--draw``
    each image is also written to that folder with its boxes drawn."""
    from pathlib import Path

    from effnet.predict import detect_images, draw_detections

    results = detect_images(predictor, args.images, score_threshold=args.threshold)
    if args.draw:
        for result in results:
            if not result.error:
                draw_detections(
                    result.file, result.detections, Path(args.draw) / f"{Path(result.file).stem}.png"
                )
    return report_detections(results, args.json)


def segment_exported(predictor, args: argparse.Namespace) -> int:
    """The classes an exported segmenter finds in each image (pixels per class), printed; with ``--draw``
    each image is also written to that folder as a colour overlay of its label mask."""
    from pathlib import Path

    from effnet.predict import SegmentationResult, draw_segmentation

    results = []
    for image in args.images:
        try:
            labels = predictor.segment(image)
        except ValueError as error:  # ImageDecodeError: the file and the reason
            results.append(SegmentationResult(image, error=str(error)))
            continue
        results.append(SegmentationResult(image, labels, predictor.labels))
        if args.draw:
            draw_segmentation(image, labels, Path(args.draw) / f"{Path(image).stem}.png")

    def lines(result):
        for label, share in result.classes().items():
            yield f"  {share:6.3f}  {label}"

    return _report(results, args.json, lines)


def report_detections(results: list[DetectionResult], as_json: bool) -> int:
    def lines(result: DetectionResult):
        for d in result.detections:
            box = ", ".join(f"{v:.1f}" for v in d["box"])
            yield f"  {d['score']:6.3f}  {d['label']}  [{box}]"

    return _report(results, as_json, lines)


def report(results: list[ImageResult], as_json: bool) -> int:
    return _report(
        results, as_json, lambda result: (f"  {p.probability:6.3f}  {p.label}" for p in result.predictions)
    )


def _report(results: list, as_json: bool, lines: Callable[[Any], Iterable[str]]) -> int:
    """Print each readable file's results (JSON, or its name and then ``lines(result)``), then one line per
    file that failed on standard error; 1 if any failed."""
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for result in results:
            if result.error:
                continue
            print(printable(result.file))
            for line in lines(result):
                print(line)
    failed = [r for r in results if r.error]
    for result in failed:
        print(f"effnet predict: {printable(result.error)}", file=sys.stderr)
    return 1 if failed else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="top-k ImageNet (or your model's) labels for images, an exported detector's boxes, or an "
        "exported segmenter's classes",
    )
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, TIFF, GIF ...)"
    )
    p.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="model name, a run folder written by `effnet train`, or an exported .onnx/.tflite file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--weights",
        help="with a model name: a weights file with a 1000-class (ImageNet) head (default: the model's "
        "published pretrained weights); for a trained run pass its folder as --model",
    )
    p.add_argument("--top", type=positive_int, default=5, help="how many labels per image (default: 5)")
    p.add_argument("--json", action="store_true", help="print JSON, one object per image")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.3,
        help="an exported detector: the lowest score shown (default: %(default)s)",
    )
    p.add_argument(
        "--draw",
        metavar="OUT_DIR",
        help="an exported detector: write each image with its boxes and labels drawn into OUT_DIR (as "
        "NAME.png); an exported segmenter: each image with its label mask as a colour overlay",
    )
    p.set_defaults(func=cmd_predict)
