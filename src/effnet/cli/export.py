"""`effnet export RUN_DIR`: a trained run as .tflite / .onnx files, float or quantized."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effnet.export.quantization import QuantizationConfig
from effnet.image_classifier import DataLoader, load

QUANTIZATIONS = ("int8", "int16", "fp16", "dynamic", "none")


def calibration_data(run: Path, limit: int = 500) -> DataLoader | None:
    """The run's own training images (from splits.json), the calibration set Model Maker uses."""
    splits = run / "splits.json"
    if not splits.is_file():
        return None
    paths = json.loads(splits.read_text())["train"][:limit]
    return DataLoader.from_samples(paths, [0] * len(paths), ["calibration"]) if paths else None


def cmd_export(args: argparse.Namespace) -> int:
    run = Path(args.run_dir)
    classifier = load(run)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - {"tflite", "onnx"})
    if unknown:
        raise ValueError(f"--format: unknown {unknown}; choose tflite and/or onnx")
    if args.quantize == "none":
        quantization = None
    elif args.quantize in ("int8", "int16"):
        data = DataLoader.from_folder(args.calibration) if args.calibration else calibration_data(run)
        if data is None:
            raise ValueError(
                f"{run}: no splits.json to calibrate {args.quantize} on; pass --calibration IMAGE_FOLDER"
            )
        classifier.train_data = data
        correct = not args.no_bias_correction
        if args.quantize == "int16":
            quantization = QuantizationConfig.for_int16(data, bias_correction=correct)
        else:
            # Model Maker's default (uint8 in/out in .tflite), or the same without per-layer bias correction
            quantization = "default" if correct else QuantizationConfig.for_int8(data, bias_correction=False)
    else:
        quantization = QuantizationConfig(args.quantize)
    out = Path(args.out) if args.out else run / "export"
    written = classifier.export(out, export_format=[*formats, "label"], quantization_config=quantization)
    for name, path in written.items():
        check = getattr(path, "check", None)
        print(f"{name:7s} {path}  {path.stat().st_size / 1e6:.2f} MB" + (f"  ({check})" if check else ""))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained run to .tflite and/or .onnx")
    p.add_argument("run_dir", help="run folder written by `effnet train`")
    p.add_argument("--format", default="tflite", help="comma-separated: tflite, onnx (default: tflite)")
    p.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default="int8",
        help="default: int8, as Model Maker; int16: int16 activations with int8 weights, for NPUs that "
        "run it (slower than float on a CPU)",
    )
    p.add_argument(
        "--calibration",
        help="image folder to calibrate int8 / int16 on (default: the run's training images)",
    )
    p.add_argument(
        "--no-bias-correction",
        action="store_true",
        help="int8 / int16: skip per-layer bias correction (faster export, less accurate file)",
    )
    p.add_argument("--out", help="output folder (default: RUN_DIR/export)")
    p.set_defaults(func=cmd_export)
