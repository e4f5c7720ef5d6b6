"""Is an int8 .onnx file right on every CPU? The pretrained EfficientNet-Lite0 (224 px, ImageNet classes) as
int8 .onnx files of each weight format, checked against float on held-out real photos, on this CPU and on an
emulated AVX2-only CPU, with their latency here.

Without VNNI, ONNX Runtime's x86 uint8 x int8 kernels add products of neighbouring inputs in int16 and
saturate, so a file can be right where it was exported and wrong elsewhere. Files:

- ``portable``: the default (`QuantizationConfig(int8_format="portable")`): 7-bit weights in every layer
  but the depthwise ones, GPTQ weight rounding, bias correction;
- ``portable, nearest``: the same with nearest rounding;
- ``vnni``: 8-bit weights everywhere, nearest rounding, bias correction (`int8_format="vnni"`);
- ``.tflite``: the int8 .tflite file (LiteRT / XNNPACK), for comparison.

Images (offline, real photos shipped by scikit-image / scikit-learn): calibration crops of some photos,
held-out crops of others (never the same photo). Agreement = top-1 equal to the float model's; cosine = mean
cosine similarity of the logits. The emulated CPU is qemu's user-mode emulator (`qemu-x86_64 -cpu
EPYC-Rome`: AVX2, no AVX-512, no VNNI; Debian's qemu-user), run on the first ``--emulated`` held-out images.

Run: .venv/bin/python benchmarks/int8_portability.py [--calibration 200] [--held-out 100] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import effnet
from effnet import runtime
from effnet.data.transforms import transforms_for
from effnet.export import QuantizationConfig, export_onnx
from export_lite0 import crops, photos
from machine import describe

CALIBRATION_PHOTOS = ("camera", "coins", "moon", "brick", "grass", "gravel", "china", "motorcycle_left")
HELD_OUT_PHOTOS = (
    "chelsea",
    "coffee",
    "rocket",
    "astronaut",
    "clock",
    "flower",
    "motorcycle_right",
    "retina",
)
FILES = {
    "portable": {"int8_format": "portable"},
    "portable, nearest": {"int8_format": "portable", "weight_rounding": "nearest"},
    "vnni": {"int8_format": "vnni"},
}
EMULATED_CPU = "EPYC-Rome"
_EMULATED = """
import sys, numpy as np
from effnet import runtime
images = np.load(sys.argv[1])
out = {str(i): runtime.load(path, num_threads=1).predict_batch(images) for i, path in enumerate(sys.argv[3:])}
np.savez(sys.argv[2], **out)
"""


def agreement(reference: np.ndarray, outputs: np.ndarray) -> tuple[float, float]:
    top1 = float(np.mean(reference.argmax(1) == outputs.argmax(1)))
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(outputs, axis=1)
    return top1, float(np.mean(np.sum(reference * outputs, 1) / norms))


def emulated_outputs(files: list[Path], images: np.ndarray, work: Path) -> list[np.ndarray] | None:
    """Each file's outputs on ``images`` on the emulated AVX2 CPU, or None without qemu."""
    if shutil.which("qemu-x86_64") is None:
        return None
    np.save(work / "images.npy", images)
    (work / "emulated.py").write_text(_EMULATED)
    command = ["qemu-x86_64", "-cpu", EMULATED_CPU, sys.executable, str(work / "emulated.py")]
    subprocess.run([*command, str(work / "images.npy"), str(work / "out.npz"), *map(str, files)], check=True)
    out = np.load(work / "out.npz")
    return [out[str(index)] for index in range(len(files))]


def latencies(files: dict[str, Path], image: np.ndarray, threads: int, runs: int) -> dict[str, float]:
    """Median ms of a batch-1 prediction per file, the files taking turns in shuffled order."""
    predictors = {key: runtime.load(path, num_threads=threads) for key, path in files.items()}
    for predictor in predictors.values():
        for _ in range(10):
            predictor.predict_batch(image)
    times: dict[str, list[float]] = {key: [] for key in predictors}
    keys, rng = list(predictors), np.random.default_rng(0)
    for _ in range(runs):
        for index in rng.permutation(len(keys)):
            start = time.perf_counter()
            predictors[keys[index]].predict_batch(image)
            times[keys[index]].append((time.perf_counter() - start) * 1000)
    return {key: float(np.median(t)) for key, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=200, help="calibration crops (default 200)")
    parser.add_argument("--held-out", type=int, default=100, help="held-out crops (default 100)")
    parser.add_argument("--emulated", type=int, default=40, help="held-out crops run emulated (default 40)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs per file and thread count")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    model = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    transform = transforms_for(model)
    pool = photos()
    calibration_pool = [pool[name] for name in CALIBRATION_PHOTOS]
    held_out_pool = [pool[name] for name in HELD_OUT_PHOTOS]
    calibration = np.stack([transform(c) for c in crops(calibration_pool, args.calibration, seed=1)])
    held_out = np.stack([transform(c) for c in crops(held_out_pool, args.held_out, seed=2)])
    with torch.no_grad():
        reference = model(torch.from_numpy(held_out)).numpy()

    work = Path(tempfile.mkdtemp(prefix="effnet-int8-portability-"))
    files: dict[str, Path] = {"float": export_onnx(model, work / "float.onnx")}
    build_s = {}
    for name, options in FILES.items():
        config = QuantizationConfig("int8", calibration, len(calibration), **options)
        start = time.perf_counter()
        files[name] = export_onnx(model, work / f"{name.replace(', ', '-')}.onnx", config)
        build_s[name] = time.perf_counter() - start
    int8_names = list(FILES)
    try:
        from effnet.export import export_tflite

        config = QuantizationConfig("int8", calibration, len(calibration))
        start = time.perf_counter()
        files[".tflite"] = export_tflite(model, work / "int8.tflite", config)
        build_s[".tflite"] = time.perf_counter() - start
        files[".tflite float"] = export_tflite(model, work / "float.tflite")
        int8_names.append(".tflite")
    except ImportError:
        pass
    here = {name: runtime.load(files[name], num_threads=2).predict_batch(held_out) for name in int8_names}
    emulated_images = held_out[: args.emulated]
    emulated = emulated_outputs([files[name] for name in int8_names], emulated_images, work)
    speed = {threads: latencies(files, held_out[:1], threads, args.runs) for threads in (1, 2)}

    lines = [
        f"Machine: {describe()}",
        f"EfficientNet-Lite0 (ImageNet), 224 px; {len(calibration)} calibration crops, {len(held_out)} "
        f"held-out crops of other photos; emulated: `qemu-x86_64 -cpu {EMULATED_CPU}` on the first "
        f"{len(emulated_images)}",
        "",
        "| file | export s | top-1 agreement here | cosine here | top-1 agreement emulated AVX2 | cosine "
        "emulated AVX2 | identical here and emulated | ms 1 thread (x float) | ms 2 threads (x float) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    lines.append(f"| .onnx float | | | | | | | {speed[1]['float']:.2f} | {speed[2]['float']:.2f} |")
    if ".tflite float" in files:
        tflite_ms = [f"{speed[t]['.tflite float']:.2f}" for t in (1, 2)]
        lines.append(f"| .tflite float | | | | | | | {tflite_ms[0]} | {tflite_ms[1]} |")
    for index, name in enumerate(int8_names):
        float_ms = {t: speed[t][".tflite float" if name == ".tflite" else "float"] for t in speed}
        top1, cosine = agreement(reference, here[name])
        if emulated is None:
            emulated_cells = "not run (no qemu-x86_64) | | "
        else:
            e_top1, e_cosine = agreement(reference[: len(emulated_images)], emulated[index])
            same = np.array_equal(emulated[index], here[name][: len(emulated_images)])
            emulated_cells = f"{e_top1:.3f} | {e_cosine:.4f} | {'yes' if same else 'no'}"
        ms = [f"{speed[t][name]:.2f} ({speed[t][name] / float_ms[t]:.2f})" for t in (1, 2)]
        cells = [name, f"{build_s[name]:.0f}", f"{top1:.3f}", f"{cosine:.4f}", emulated_cells, *ms]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(
            f"<!-- .venv/bin/python benchmarks/int8_portability.py {' '.join(sys.argv[1:])} -->\n{text}\n"
        )


if __name__ == "__main__":
    main()
