"""Semantic segmentation on the generated set (`effnet.data.segmentation_set`: real objects cut out onto real
photos, exact masks, 5 classes + background): mIoU on the held-out test images of LR-ASPP-Lite0 and the
mobile DeepLabV3 on MobileNetV2 (both with offline ImageNet backbones), frozen backbone and fine-tuned, with
their training times; the parameter count of ``lraspp_mobilenet_v3_large`` against torchvision's; and each
fine-tuned model as .onnx and .tflite files, float32 and int8: mIoU through `effnet.runtime` (each test image
alone, scored at its own size, as `evaluate` scores), size, and latency of the file at batch 1.

int8 files are calibrated on training images (`ImageSegmenter.export`'s default); the .tflite int8 file
takes uint8 input and gives uint8 logits, as on-device pipelines feed it.

Run: .venv/bin/python benchmarks/segmentation.py [--train 200] [--test 60] [--size 160]
         [--epochs 30 6] [--out results/segmentation-cpu-2core.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from machine import describe, log_seconds, save_table

MODELS = ("lraspp_efficientnet_lite0", "deeplabv3_mobilenet_v2")
FORMATS = ("onnx", "tflite")
TORCHVISION_LRASPP_PARAMS = 3_221_538  # torchvision model docs, lraspp_mobilenet_v3_large (21 classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=200, help="generated training images")
    parser.add_argument("--test", type=int, default=60, help="generated test images")
    parser.add_argument("--size", type=int, default=160, help="image side; the models train and run at it")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--epochs", type=int, nargs=2, default=[30, 6], help="frozen-backbone epochs, fine-tuning epochs"
    )
    parser.add_argument("--probe", type=int, default=10, help="fine-tuning: head-only epochs first")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per latency")
    parser.add_argument("--data", help="folder for the generated set and files (default: a temporary one)")
    parser.add_argument("--out", help="write the markdown table here too")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine: one core for this benchmark

    from effnet import image_segmenter
    from effnet.data.segmentation_set import load_segmentation_set, write_segmentation_set
    from effnet.models.segmentation import build_segmenter

    params = sum(p.numel() for p in build_segmenter("lraspp_mobilenet_v3_large", 21).parameters())
    folder = Path(args.data or tempfile.mkdtemp(prefix="segmentation-"))
    root = write_segmentation_set(folder / "set", args.train, args.test, image_size=args.size)
    train, test = load_segmentation_set(root)
    lines = [
        f"{describe()}; generated segmentation set: {len(train)} train / {len(test)} test images of "
        f"{args.size} px, {len(train.label_names)} classes (background included); models at {args.size} "
        f"px, output stride 16, batch 8, horizontal flips; frozen: {args.epochs[0]} epochs of the head on "
        f"cached backbone features; fine-tuned: {args.probe} such epochs, then {args.epochs[1]} of the whole "
        "network (backbone at 0.1x the learning rate); mIoU and pixel accuracy on the test images at their "
        "own size",
        "",
        f"`lraspp_mobilenet_v3_large` at 21 classes: {params:,} parameters (torchvision: "
        f"{TORCHVISION_LRASPP_PARAMS:,}; {'equal' if params == TORCHVISION_LRASPP_PARAMS else 'DIFFERENT'})",
        "",
        "| model | backbone | mIoU | pixel acc. | training s | params |",
        "|---|---|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    tuned = {}
    for name in args.models:
        for whole in (False, True):
            began = time.perf_counter()
            settings = {"probe_epochs": args.probe} if whole else {}
            model = image_segmenter.create(
                train, name, epochs=args.epochs[int(whole)], input_size=args.size, train_whole_model=whole,
                **settings,
            )  # fmt: skip
            seconds = time.perf_counter() - began
            log_seconds(f"{name}: training", began)
            metrics = model.evaluate(test)
            count = sum(p.numel() for p in model.network.parameters())
            row = (
                f"| {name} | {'fine-tuned' if whole else 'frozen'} | {100 * metrics['mIoU']:.1f} | "
                f"{100 * metrics['pixel_accuracy']:.1f} | {seconds:.0f} | {count / 1e6:.2f}M |"
            )
            print(row, flush=True)
            lines.append(row)
            if whole:
                tuned[name] = (model, metrics)
    lines += [
        "",
        "| model | file | mIoU | mIoU - float | agreement | MB | size / float | ms, 1 thread |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines[-3:]), flush=True)
    for name, (model, metrics) in tuned.items():
        lines.append(f"| {name} | PyTorch | {100 * metrics['mIoU']:.1f} | | | | | |")
        print(lines[-1], flush=True)
        for file_format in FORMATS:
            reference = None
            for quantization in (None, "int8"):
                result = measure_file(model, test, folder, name, file_format, quantization, args.runs)
                reference = reference or result
                lines.append(table_row(name, result, reference))
                print(lines[-1], flush=True)
    save_table(
        args.out,
        lines,
        "\nagreement: the share of pixels whose class the file and PyTorch agree on, on the export check's "
        "images (float: 4 training images; int8: held-out training images). Latency: median of the file on "
        "one preprocessed test image, one thread, batch 1, after 5 untimed calls.",
    )


def measure_file(model, test, folder: Path, name: str, file_format: str, quantization, runs: int) -> dict:
    began = time.perf_counter()
    out = folder / f"{name}-{quantization or 'float'}"
    exported = model.export(out, export_format=file_format, quantization_config=quantization)[file_format]
    log_seconds(f"{exported}: export", began)
    metrics = model.evaluate_tflite(exported, test)
    return {
        "file": f"{file_format} {quantization or 'float32'}",
        "mIoU": metrics["mIoU"],
        "agreement": exported.check.top1_agreement,
        "bytes": exported.stat().st_size,
        "ms": file_latency(exported, test, runs),
    }


def file_latency(path: Path, test, runs: int) -> float:
    from effnet.bench.latency import measure
    from effnet.runtime import load
    from effnet.runtime.detection import resize_for_detection

    predictor = load(path, num_threads=1)
    image = resize_for_detection(test.samples[0].path, predictor.preprocessing)[0][None]
    return measure(lambda: predictor.predict_batch(image), runs, 5).median_ms


def table_row(name: str, result: dict, reference: dict) -> str:
    quantized = result is not reference
    delta = f"{100 * (result['mIoU'] - reference['mIoU']):+.1f}" if quantized else ""
    ratio = f"{result['bytes'] / reference['bytes']:.0%}" if quantized else ""
    return (
        f"| {name} | {result['file']} | {100 * result['mIoU']:.1f} | {delta} | {result['agreement']:.3f} | "
        f"{result['bytes'] / 1e6:.2f} | {ratio} | {result['ms']:.1f} |"
    )


if __name__ == "__main__":
    main()
