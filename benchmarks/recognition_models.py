"""Recognition models at 112x112 (512-d embedding): IResNet-50 (insightface's baseline, its own flatten "E"
head) against EfficientNet-Lite0 / B0-B3 with the flatten and the gdc head.

Per row: exact parameter count and MACs (`effnet.profile`), the float and int8 ONNX file sizes
(`effnet.export.export_onnx`; int8 = ONNX Runtime static QDQ calibrated on 64 real face photos,
scikit-image's ``lfw_subset``, 16 more check the file), and ONNX Runtime latency of one image at 1 thread
(median and p10-p90, `effnet.bench.latency.measure`). Weights are random: file size and latency do not
depend on their values, so no training is needed to compare architectures.

    python benchmarks/recognition_models.py                       # all rows, ~10 min on 2 cores
    python benchmarks/recognition_models.py --rows iresnet50 efficientnet_lite0-gdc --runs 20
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from effnet import create_embedder, create_model, profile
from effnet.bench.latency import measure
from effnet.export import QuantizationConfig, export_onnx
from effnet.runtime import load as load_runtime

EMBEDDING_DIM = 512
SIZE = 112
CALIBRATION, CHECK = 64, 16
BACKBONES = ("efficientnet_lite0", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3")
ROWS = ["iresnet50"] + [f"{b}-{head}" for b in BACKBONES for head in ("flatten", "gdc")]
RESULT = Path(__file__).parent / "results" / "recognition_models-cpu-2core.md"


def build(row: str) -> torch.nn.Module:
    if row == "iresnet50":
        return create_model("iresnet50", num_classes=0).eval()  # its own E head: bn2, fc 25088->512, BN
    backbone, head = row.rsplit("-", 1)
    return create_embedder(backbone, head, EMBEDDING_DIM, SIZE).eval()


def face_photos(folder: Path) -> list[str]:
    """The first CALIBRATION + CHECK of scikit-image's LFW faces (25x25 grey crops) as RGB PNG files."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, face in enumerate(data.lfw_subset()[: CALIBRATION + CHECK]):
        path = folder / f"face{index:03d}.png"
        if not path.exists():
            Image.fromarray((face * 255).round().astype(np.uint8)).convert("RGB").save(path)
        paths.append(str(path))
    return paths


def recompute_bn_statistics(model: torch.nn.Module, photos: list[str]) -> None:
    """Set every BatchNorm's running statistics from the calibration photos (train-mode passes, no weight
    change). A randomly initialised network's outputs are ~1e-10 with the default statistics, which makes
    int8 calibration degenerate; with these the activations have realistic ranges."""
    from effnet.data import EvalTransform

    transform = EvalTransform(model.preprocessing)
    images = torch.from_numpy(np.stack([transform(p) for p in photos[:CALIBRATION]]))
    for layer in model.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the passes
    model.train()
    with torch.no_grad():
        for batch in images.split(16):
            model(batch)
    model.eval()


def measure_row(row: str, photos: list[str], workdir: Path, runs: int) -> dict:
    model = build(row)
    recompute_bn_statistics(model, photos)
    counted = profile(model, SIZE)
    result = {"row": row, "params": counted.params, "macs": counted.macs}
    sample = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    for kind in ("float", "int8"):
        quantize = (
            QuantizationConfig("int8", photos, quantization_steps=CALIBRATION, bias_correction=False)
            if kind == "int8"
            else None
        )
        began = time.perf_counter()
        target = workdir / f"{row}-{kind}.onnx"
        path = export_onnx(model, target, quantize=quantize, representative_data=photos)
        result[f"{kind}_export_s"] = time.perf_counter() - began
        result[f"{kind}_bytes"] = path.stat().st_size
        result[f"{kind}_check"] = str(path.check)
        predictor = load_runtime(path, num_threads=1)
        result[f"{kind}_timing"] = measure(lambda p=predictor: p.predict_batch(sample), runs=runs, warmup=3)
        os.remove(path)  # an IResNet-50 file is 174 MB: keep the disk free
    return result


def load_average() -> str:
    try:
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        return "load average unknown"


def table(results: list[dict], machine: str, runs: int, loads: tuple[str, str]) -> str:
    def mb(n: int) -> str:
        return f"{n / 1e6:.1f}"

    def ms(t) -> str:
        return f"{t.median_ms:.1f} ({t.p10_ms:.1f}-{t.p90_ms:.1f}){'*' if t.noisy else ''}"

    lines = [
        "<!-- python benchmarks/recognition_models.py -->",
        f"Machine: {machine}; {loads[0]} at the start, {loads[1]} at the end.",
        "",
        "112x112 input, 512-d embedding, random weights with BatchNorm statistics set on the calibration "
        "faces (size and latency do not depend on the weights; int8 agreement does, so none is given). "
        f"ONNX Runtime, batch 1, 1 thread: median (p10-p90) ms of {runs} runs after 3 warm-up runs; "
        "* = p90/median stayed above 1.5 after two repeats (a busy machine). int8: static QDQ, "
        "calibrated on 64 LFW faces (scikit-image `lfw_subset`).",
        "",
        "| model | head | params | MACs | ONNX MB float / int8 | ORT ms float | ORT ms int8 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        name, head = ("iresnet50", "flatten (E, own)") if r["row"] == "iresnet50" else r["row"].rsplit("-", 1)
        lines.append(
            f"| `{name}` | {head} | {r['params']:,} | {r['macs'] / 1e6:,.0f}M | "
            f"{mb(r['float_bytes'])} / {mb(r['int8_bytes'])} | {ms(r['float_timing'])} | "
            f"{ms(r['int8_timing'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per file (default 30)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"markdown table (default {RESULT})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from machine import describe

    torch.set_num_threads(1)
    torch.manual_seed(0)
    machine, load_before = describe(), load_average()
    print(machine, "|", load_before, flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="effnet-recognition-models-") as tmp:
        photos = face_photos(Path(tmp) / "faces")
        for row in args.rows:
            result = measure_row(row, photos, Path(tmp), args.runs)
            results.append(result)
            print(
                f"{row:28s} {result['params']:>12,} params  float {result['float_bytes'] / 1e6:6.1f} MB "
                f"{result['float_timing'].median_ms:7.1f} ms  int8 {result['int8_bytes'] / 1e6:5.1f} MB "
                f"{result['int8_timing'].median_ms:7.1f} ms  (int8 check: {result['int8_check']})",
                flush=True,
            )
    text = table(results, machine, args.runs, (load_before, load_average()))
    print("\n" + text)
    from effnet.checkpoint import write_text

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, text)
    print("written:", args.out)


if __name__ == "__main__":
    main()
