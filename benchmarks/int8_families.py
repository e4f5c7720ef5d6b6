"""int8 vs float latency of the families with squeeze-excite, swish or hard-swish (MobileNetV3-Large / Small,
EfficientNet-B0, EfficientNetV2-B0), in ONNX Runtime and LiteRT, with and without the int8 rewrites of
`effnet.export.lowering` (hard-swish / hard-sigmoid as MUL, ADD + RELU6, MUL; the ONNX SE pool as
AveragePool).

The SE families have no offline weights, so each model is randomly initialized and its batch-norm statistics
are taken from 64 crops of real photos (the photos of benchmarks/export_lite0.py): its activations then have
a realistic spread, which is what latency and quantization depend on. Accuracy: the mean cosine similarity
between the int8 and the float file's outputs on 64 held-out crops, as is and centered (less the float
file's mean output: a random network gives every image much the same logits, so the plain cosine is high
whatever int8 does to what tells the images apart); top-1 agreement means little for a random network.
Calibration: 64 other crops; no bias correction (it does not change the latency).

Latency: batch 1 through effnet.runtime, 10 warm-up runs, then the files of one model take turns in a
shuffled order each round (medians), so that load from other processes falls on all of them alike.

Run: .venv/bin/python benchmarks/int8_families.py [--runs 50] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch

import effnet
from effnet import runtime
from effnet.data.transforms import transforms_for
from effnet.export import QuantizationConfig, export_onnx, export_tflite
from export_lite0 import crops, latencies, photos
from machine import describe, save_table

MODELS = ("mobilenet_v3_large_100", "mobilenet_v3_small_100", "efficientnet_b0", "efficientnet_v2_b0")
ENGINES = {"onnx": export_onnx, "tflite": export_tflite}
KINDS = ("float", "int8 plain", "int8")  # "int8 plain": without effnet.export.lowering


def warmed_up(name: str, images: np.ndarray) -> torch.nn.Module:
    """A random-init ``name`` whose batch-norm statistics come from ``images``."""
    torch.manual_seed(0)
    model = effnet.create_model(name, pretrained=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), 16):
            model(torch.from_numpy(images[start : start + 16]))
    return model.eval()


def export_all(model, engine: str, folder: Path, calibration: np.ndarray) -> dict[str, Path]:
    export = ENGINES[engine]
    config = QuantizationConfig("int8", calibration, len(calibration), bias_correction=False)
    files = {"float": export(model, folder / f"{model.name}.{engine}")}
    with mock.patch("effnet.export.torch_model.lower_for_int8", lambda network, _engine: network):
        files["int8 plain"] = export(model, folder / f"{model.name}_int8_plain.{engine}", config)
    files["int8"] = export(model, folder / f"{model.name}_int8.{engine}", config)
    return files


def cosine(a: np.ndarray, b: np.ndarray, center: np.ndarray | float = 0.0) -> float:
    """Mean cosine similarity of the rows of ``a`` and ``b`` (each less ``center``)."""
    a, b = a.reshape(len(a), -1) - center, b.reshape(len(b), -1) - center
    return float(np.mean((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def onnx_float_share(path: Path, image: np.ndarray, runs: int = 20) -> float:
    """The share of ONNX Runtime's kernel time (1 thread) spent outside integer ops: float ops and the
    DequantizeLinear / QuantizeLinear around them."""
    import json

    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_profiling, options.intra_op_num_threads = True, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: image}
    for _ in range(runs):
        session.run(None, feed)
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    times: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            times[op] = times.get(op, 0.0) + event["dur"]
    layout = ("Transpose", "Reshape")
    integer = sum(t for op, t in times.items() if op.startswith(("QLinear", "QGemm")) or op in layout)
    return 1.0 - integer / sum(times.values())


def tflite_partitions(path: Path) -> int:
    """How many pieces the XNNPACK delegate splits the graph into (1: it runs every op)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--runs", type=int, default=50, help="timed runs per file and thread count")
    parser.add_argument("--out", default=None, help="also write the table to this .md file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(message)s")

    folder = Path(tempfile.mkdtemp(prefix="effnet-int8-families-"))
    pool = list(photos().values())
    lines = [
        f"Machine: {describe()}",
        "",
        "| model | engine | float ms 1t / 2t | int8 plain / float 1t / 2t | int8 / float 1t / 2t | "
        "cosine / centered, int8 plain | int8 | float share (ORT) or partitions (LiteRT), plain / int8 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name in args.models:
        transform = transforms_for(effnet.create_model(name, pretrained=False))
        images = np.stack([transform(crop) for crop in crops(pool, 128, seed=1)])
        calibration, held_out = images[:64], images[64:]
        model = warmed_up(name, calibration)
        for engine in args.engines:
            files = export_all(model, engine, folder, calibration)
            timed = {t: latencies(files, held_out[:1], t, args.runs) for t in (1, 2)}
            reference = runtime.load(files["float"]).predict_batch(held_out)
            outputs = [runtime.load(files[k]).predict_batch(held_out) for k in KINDS[1:]]
            mean = reference.mean(axis=0)
            cosines = [f"{cosine(o, reference):.3f} / {cosine(o, reference, mean):.3f}" for o in outputs]
            if engine == "onnx":
                detail = [f"{onnx_float_share(files[k], held_out[:1]):.0%}" for k in KINDS[1:]]
            else:
                detail = [str(tflite_partitions(files[k])) for k in KINDS[1:]]
            ratios = [
                " / ".join(f"{timed[t][kind][0] / timed[t]['float'][0]:.2f}" for t in (1, 2))
                for kind in KINDS[1:]
            ]
            line = (
                f"| {name} | {engine} | {timed[1]['float'][0]:.2f} / {timed[2]['float'][0]:.2f} | "
                f"{ratios[0]} | **{ratios[1]}** | {cosines[0]} | {cosines[1]} | "
                f"{detail[0]} / {detail[1]} |"
            )
            lines.append(line)
            print(line, flush=True)
    footer = (
        f"\nRandom-init models, batch-norm statistics from 64 photo crops; {args.runs} interleaved runs per "
        "file, medians; int8 = the default export (effnet.export.lowering), int8 plain = without it."
    )
    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
