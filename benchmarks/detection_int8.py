"""int8 detector files against float32 ones: COCO AP / AP50 of EfficientDet-Lite0 and SSDLite-MobileNetV2
trained on the generated detection set (`effnet.data.detection_set`), as .onnx and .tflite files holding
the network and its post-processing (int8: the network; NMS stays float), their sizes, and the latency of
the whole file (network + NMS) at 1 and 2 threads.

Each file is evaluated as an app runs it: `effnet.runtime` `detect` on every test image, one at a time,
at the file's own resolution (`ObjectDetector.evaluate_tflite`). int8 files are calibrated on training
images (`export_detector`'s defaults: GPTQ rounding and bias correction for ONNX, bias correction for
LiteRT); the .tflite int8 file takes uint8 input, as on-device pipelines feed camera frames.

Run: .venv/bin/python benchmarks/detection_int8.py [--train 300] [--test 100] [--size 192]
         [--epochs 12 6] [--out results/detection_int8-cpu-2core.md]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import describe, log_seconds, save_table

MODELS = ("efficientdet_lite0", "ssdlite_mobilenet_v2")
FORMATS = ("onnx", "tflite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=300, help="generated training images")
    parser.add_argument("--test", type=int, default=100, help="generated test images")
    parser.add_argument("--size", type=int, default=192, help="input size the detectors train and run at")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--epochs", type=int, nargs="+", default=[12, 6], help="frozen-backbone epochs, per model"
    )
    parser.add_argument("--calibration", type=int, default=100, help="training images that calibrate int8")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per latency")
    parser.add_argument(
        "--data", help="folder for the generated set and the files (default: a temporary one)"
    )
    parser.add_argument("--out", help="write the markdown table here too")
    parser.add_argument("--json", help="append each row as a JSON line here")
    args = parser.parse_args()

    from effnet import object_detector
    from effnet.data.detection_set import load_detection_set, write_detection_set
    from effnet.object_detector.hparams import DetectorHParams

    folder = Path(args.data or tempfile.mkdtemp(prefix="detection-int8-"))
    root = write_detection_set(folder / "set", train=args.train, test=args.test, image_size=320)
    train, test = load_detection_set(root)
    hp = DetectorHParams()
    lines = [
        f"{describe()}; generated detection set: {len(train)} train / {len(test)} test images of 320 px, "
        f"{len(train.label_names)} classes, detectors trained at {args.size} px with a frozen ImageNet "
        f"backbone (batch 8); int8 calibrated on {args.calibration} training images; the files hold the "
        "post-processing `ObjectDetector.evaluate` runs (model.postprocessing: the spec's "
        f"tflite_max_detections, score >= {hp.score_threshold}, IoU {hp.iou_threshold}; 256 candidates); "
        "AP on the test images through effnet.runtime (one image at a time); "
        "round trip: the float file's AP minus `evaluate`'s; latency: median of the whole file, batch 1",
        "",
        "| detector | file | AP | AP50 | AP - float | AP50 - float | round trip | agreement | MB "
        "| size / float | ms, 1 thread | ms, 2 threads |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for position, name in enumerate(args.models):
        began = time.perf_counter()
        epochs = args.epochs[min(position, len(args.epochs) - 1)]
        model = object_detector.create(
            train, model_spec=name, batch_size=8, input_size=args.size, epochs=epochs
        )
        log_seconds(f"{name}: training, {epochs} epochs", began)
        metrics = model.evaluate(test)
        row = (
            f"| {name} | PyTorch | {100 * metrics['AP']:.1f} | {100 * metrics['AP50']:.1f} | | | | | | | | |"
        )
        print(row, flush=True)
        lines.append(row)
        for file_format in FORMATS:
            reference: dict = {}
            for quantization in (None, "int8"):
                result = measure_file(model, train, test, folder, name, file_format, quantization, args)
                if quantization is None:
                    reference = result
                row = table_row(name, result, reference, metrics)
                print(row, flush=True)
                lines.append(row)
                if args.json:
                    with open(args.json, "a") as handle:
                        handle.write(json.dumps({"model": name, **result}) + "\n")
    save_table(
        args.out,
        lines,
        "\nagreement: the file's detections scoring >= 0.3 matched (same class, IoU >= 0.5) to PyTorch's on "
        "the export check's held-out training images (export_detector's check).",
    )


def measure_file(model, train, test, folder: Path, name: str, file_format: str, quantization, args) -> dict:
    from effnet.export import QuantizationConfig
    from effnet.export.detection import export_detector

    config = None
    if quantization == "int8":
        steps = min(args.calibration, max(1, len(train) - 32))
        if file_format == "tflite":
            config = QuantizationConfig.for_int8(None, quantization_steps=steps)
        else:
            config = QuantizationConfig("int8", quantization_steps=steps)
    path = folder / f"{name}-{args.size}-{quantization or 'float'}.{file_format}"
    began = time.perf_counter()
    exported = export_detector(
        model.network,
        path,
        format=file_format,
        quantization=config,
        representative_images=train,
        labels=train.label_names,
        **model.postprocessing,
    )
    log_seconds(f"{path.name}: export", began)
    began = time.perf_counter()
    metrics = model.evaluate_tflite(exported, test)
    log_seconds(f"{path.name}: evaluation", began)
    latency = {threads: file_latency(exported, test, threads, args.runs) for threads in (1, 2)}
    return {
        "file": file_format,
        "quantization": quantization or "float32",
        "AP": metrics["AP"],
        "AP50": metrics["AP50"],
        "agreement": exported.check.agreement,
        "bytes": exported.stat().st_size,
        "ms_1_thread": latency[1],
        "ms_2_threads": latency[2],
    }


def file_latency(path: Path, test, threads: int, runs: int) -> float:
    from effnet.bench.latency import measure
    from effnet.runtime import load
    from effnet.runtime.detection import resize_for_detection

    predictor = load(path, num_threads=threads)
    image = resize_for_detection(test.samples[0].path, predictor.preprocessing)[0][None]
    return measure(lambda: predictor.detect_batch(image), runs, 5).median_ms


def table_row(name: str, result: dict, reference: dict, evaluated: dict) -> str:
    ap, ap50 = 100 * result["AP"], 100 * result["AP50"]
    quantized = result["quantization"] != "float32"
    delta = (
        f"{ap - 100 * reference['AP']:+.1f} | {ap50 - 100 * reference['AP50']:+.1f}" if quantized else " | "
    )
    ratio = f"{result['bytes'] / reference['bytes']:.0%}" if quantized else ""
    trip = "" if quantized else f"{ap - 100 * evaluated['AP']:+.2f}"
    return (
        f"| {name} | {result['file']} {result['quantization']} | {ap:.1f} | {ap50:.1f} | {delta} | {trip} | "
        f"{result['agreement']:.3f} | {result['bytes'] / 1e6:.2f} | {ratio} | {result['ms_1_thread']:.1f} | "
        f"{result['ms_2_threads']:.1f} |"
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
