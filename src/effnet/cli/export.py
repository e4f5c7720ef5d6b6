"""`effnet export RUN_DIR`: a trained run as .tflite / .onnx / .rknn files, float or quantized."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

# effnet.export.quantization is plain data (no torch, no engines): the parser reads its choices and defaults
from effnet.cli.argument_types import non_negative_int, positive_int
from effnet.export.quantization import (
    DEFAULT_QUANTIZATION_STEPS,
    INT8_FORMATS,
    WEIGHT_ROUNDINGS,
    QuantizationConfig,
)

if TYPE_CHECKING:
    from effnet.image_classifier import DataLoader

QUANTIZATIONS = ("int8", "int16", "fp16", "dynamic", "none")
FILE_FORMATS = ("tflite", "onnx", "rknn")
# rknn-toolkit2's targets and calibration algorithms (kept here too: the parser must not import the exporter)
RKNN_TARGETS = ("rk3588", "rk3576", "rk3568", "rk3566", "rk3562", "rv1103", "rv1106", "rv1126b")
RKNN_V1_TARGETS = ("rv1126", "rv1109")  # rknn-toolkit v1's: effnet writes the ONNX file it converts
RKNN_ALGORITHMS = ("normal", "mmse", "kl")


def calibration_data(run: Path, limit: int = DEFAULT_QUANTIZATION_STEPS) -> DataLoader | None:
    """Up to ``limit`` of the run's own training images (from splits.json), the calibration set Model Maker
    uses; the export checks the file on those it does not calibrate on."""
    from effnet.image_classifier import DataLoader

    splits = run / "splits.json"
    if not splits.is_file():
        return None
    paths = json.loads(splits.read_text())["train"][:limit]
    return DataLoader.from_samples(paths, [0] * len(paths), ["calibration"]) if paths else None


def cmd_export(args: argparse.Namespace) -> int:
    from effnet.export.checks import CHECK_IMAGES
    from effnet.image_classifier import DataLoader, load

    run = Path(args.run_dir)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FILE_FORMATS))
    if unknown:
        raise ValueError(f"--format: unknown {unknown}; choose from {', '.join(FILE_FORMATS)}")
    if "rknn" in formats and args.quantize == "dynamic":
        raise ValueError(
            "--format rknn: --quantize dynamic does not exist on the NPU; use int8, int16 or fp16"
        )
    if args.finetune_steps and args.quantize not in ("int8", "int16"):
        raise ValueError(f"--finetune-steps applies to --quantize int8 or int16, not {args.quantize}")
    if args.weight_rounding not in (None, "nearest", "auto") and args.quantize not in ("int8", "int16"):
        raise ValueError(f"--weight-rounding applies to --quantize int8 or int16, not {args.quantize}")
    if args.int8_format != "portable" and args.quantize != "int8":
        raise ValueError(f"--int8-format applies to --quantize int8, not {args.quantize}")
    out = Path(args.out) if args.out else run / "export"
    if "rknn" in formats and args.target in RKNN_V1_TARGETS:
        _export_for_rknn_v1(run, args.target, out)
        formats = [name for name in formats if name != "rknn"]
        if not formats:
            return 0
    if _is_embedder_run(run):
        return _export_embedder(args, run, formats, out)
    from effnet.cli.detection import export_detector_run, is_detector_run

    if is_detector_run(run):
        return export_detector_run(args, run, formats, out)
    from effnet.cli.segmentation import export_segmenter_run, is_segmenter_run

    if is_segmenter_run(run):
        return export_segmenter_run(args, run, formats, out)
    classifier = load(run)
    data = None
    if args.quantize in ("int8", "int16"):
        if args.calibration:
            data = DataLoader.from_folder(args.calibration)
        else:
            data = calibration_data(run, args.calibration_images + CHECK_IMAGES)
        if data is None:
            raise ValueError(
                f"{run}: no splits.json to calibrate {args.quantize} on; pass --calibration IMAGE_FOLDER"
            )
        classifier.train_data = data
    # int8: Model Maker's uint8 input and output in .tflite ("default" when nothing else is asked for)
    quantization: QuantizationConfig | str | None = _configured(args, data, integer_io=True)
    if args.quantize == "int8" and quantization == QuantizationConfig.for_int8(data):
        quantization = "default"
    written = classifier.export(
        out,
        export_format=[*formats, "label"],
        quantization_config=quantization,
        target=args.target,
        rknn_algorithm=args.rknn_algorithm,
    )
    for name, path in written.items():
        check = getattr(path, "check", None)
        print(f"{name:7s} {path}  {path.stat().st_size / 1e6:.2f} MB" + (f"  ({check})" if check else ""))
    return 0


def _export_for_rknn_v1(run: Path, target: str, out: Path) -> None:
    """RV1126 / RV1109: the ONNX file rknn-toolkit v1 converts (effnet cannot run that toolkit), with the
    settings to give it."""
    from effnet.export.rknn_v1 import export_onnx_for_rknn_v1

    if _is_embedder_run(run):
        from effnet import embedder

        network = embedder.load(run).network
    else:
        from effnet.image_classifier import load

        network = load(run).network
    path = export_onnx_for_rknn_v1(network, out / f"model-{target}.onnx")
    mean = [round(255 * value, 3) for value in network.preprocessing.mean]
    std = [round(255 * value, 3) for value in network.preprocessing.std]
    print(f"onnx    {path}  {path.stat().st_size / 1e6:.2f} MB  (opset 12 for rknn-toolkit v1)")
    print(
        f"        {target} needs rknn-toolkit v1 (Python 3.6-3.8), not effnet: "
        f"rknn.config(mean_values=[{mean}], std_values=[{std}], target_platform='{target}'), load_onnx, "
        "build, export_rknn; docs/rknn.md"
    )


def _configured(
    args: argparse.Namespace,
    data: DataLoader | None,
    integer_io: bool = False,
    default_rounding: str = "auto",
) -> QuantizationConfig | None:
    """The `QuantizationConfig` that --quantize, --no-bias-correction, --finetune-steps, --weight-rounding
    and --int8-format ask for; ``integer_io``: int8 .tflite files take and return uint8 (float32 otherwise);
    ``default_rounding``: the weight rounding without --weight-rounding (nearest with --finetune-steps)."""
    if args.quantize == "none":
        return None
    if args.quantize not in ("int8", "int16"):
        return QuantizationConfig(args.quantize)
    io_type = "uint8" if integer_io and args.quantize == "int8" else "float32"
    return QuantizationConfig(
        args.quantize,
        data,
        inference_input_type=io_type,
        inference_output_type=io_type,
        bias_correction=not args.no_bias_correction,
        finetune_steps=args.finetune_steps,
        weight_rounding=args.weight_rounding or ("nearest" if args.finetune_steps else default_rounding),
        int8_format=args.int8_format if args.quantize == "int8" else "portable",
        quantization_steps=args.calibration_images,
    )


def _is_embedder_run(run: Path) -> bool:
    from effnet.embedder.model import FORMAT
    from effnet.training.run_folder import holds_run_of

    return holds_run_of(run, FORMAT)


def _export_embedder(args: argparse.Namespace, run: Path, formats: list[str], out: Path) -> int:
    """An `effnet embed-train` run: the embedding model's files (float32 input and output), checked against
    PyTorch by mean cosine similarity."""
    from effnet import embedder
    from effnet.embedder.exporting import WEIGHT_ROUNDING
    from effnet.image_classifier import DataLoader

    data = None
    if args.quantize in ("int8", "int16"):
        if not args.calibration:
            raise ValueError(
                f"{run}: an embedder run does not keep its training images; pass --calibration "
                f"IDENTITY_FOLDER (a few hundred training images) to calibrate {args.quantize} on"
            )
        data = DataLoader.from_folder(args.calibration)
    quantization = _configured(args, data, default_rounding=WEIGHT_ROUNDING)
    written = embedder.load(run).export(
        out,
        formats,
        quantization,
        representative_data=data,
        target=args.target,
        rknn_algorithm=args.rknn_algorithm,
    )
    for name, entry in written.items():
        print(f"{name:7s} {entry['path']}  {entry['bytes'] / 1e6:.2f} MB  ({entry['check']})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained run to .tflite, .onnx and/or .rknn")
    p.add_argument("run_dir", help="run folder written by `effnet train` or `effnet embed-train`")
    p.add_argument(
        "--format",
        default="tflite",
        help="comma-separated: tflite, onnx, rknn (Rockchip NPU; needs `make rknn-env`) (default: tflite)",
    )
    p.add_argument(
        "--quantize",
        "--quantization",
        dest="quantize",
        choices=QUANTIZATIONS,
        default="int8",
        help="default: int8, as Model Maker; int16: int16 activations with int8 weights, for NPUs that "
        "run it (slower than float on a CPU); in .rknn files int16 is the toolkit's w16a16i_dfp (16-bit "
        "weights and activations) and none means fp16",
    )
    p.add_argument(
        "--target",
        choices=RKNN_TARGETS + RKNN_V1_TARGETS,
        default="rk3588",
        help="--format rknn: the Rockchip NPU (default: %(default)s); rv1126 / rv1109 write the opset-12 "
        ".onnx file that rknn-toolkit v1 converts (docs/rknn.md)",
    )
    p.add_argument(
        "--rknn-algorithm",
        choices=RKNN_ALGORITHMS,
        default="normal",
        help="--format rknn, int8 / int16: rknn-toolkit2's calibration algorithm (default: %(default)s; "
        "mmse keeps more and takes longer, kl: KL divergence)",
    )
    p.add_argument(
        "--calibration",
        help="image folder to calibrate int8 / int16 on (default: a classifier run's training images; "
        "required for an embedder run)",
    )
    p.add_argument(
        "--calibration-images",
        type=positive_int,
        default=DEFAULT_QUANTIZATION_STEPS,
        metavar="N",
        help=f"int8 / int16: calibrate on at most N images (default: {DEFAULT_QUANTIZATION_STEPS}, as Model "
        "Maker's quantization_steps; fewer export faster)",
    )
    p.add_argument(
        "--no-bias-correction",
        action="store_true",
        help="int8 / int16: skip per-layer bias correction (faster export, less accurate file)",
    )
    p.add_argument(
        "--finetune-steps",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="int8 / int16: quantization-aware fine-tuning of a copy for N steps on the calibration images "
        "before exporting (a few hundred; for models that lose too much in post-training quantization; "
        "default: %(default)s, none)",
    )
    p.add_argument(
        "--weight-rounding",
        choices=WEIGHT_ROUNDINGS,
        help="int8 / int16: gptq chooses each layer's int8 weights to keep its output close to float on the "
        "calibration images (one pass, no training; instead of --finetune-steps). Default: gptq for an "
        "embedder run; for a classifier run auto: gptq in a portable int8 .onnx file, nearest elsewhere",
    )
    p.add_argument(
        "--int8-format",
        choices=INT8_FORMATS,
        default="portable",
        help="int8 .onnx weights (default: %(default)s): portable: exact on every CPU; vnni: 8-bit weights "
        "in every layer, right only on CPUs with int8 dot-product instructions (x86 VNNI, ARM); docs/int8.md",
    )
    p.add_argument("--out", help="output folder (default: RUN_DIR/export)")
    p.set_defaults(func=cmd_export)
