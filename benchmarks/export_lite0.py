"""Exported EfficientNet-Lite0 (pretrained, 224 px): file sizes, CPU latency and int8 agreement, for ONNX
Runtime and LiteRT.

Images (all offline, real photos): the 17 photos that scikit-image and scikit-learn ship (astronaut, chelsea,
coffee, rocket, camera, motorcycle, china, flower, ...). Calibration: 500 random crops (30-100% of a side,
random flips) of them; held out: 300 other random crops of the same photos, plus the four test photos whole.
Crops of textures and microscopy are hard, ambiguous inputs, so agreement is also given on the held-out images
the float model is confident about (top-1 probability >= 0.5).

Run: .venv/bin/python benchmarks/export_lite0.py [--runs 100] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

import effnet
from effnet import runtime
from effnet.data.transforms import transforms_for
from effnet.export import QuantizationConfig, export_onnx, export_tflite
from machine import describe

TEST_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
OTHER_PHOTOS = (
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "coins",
    "moon",
    "retina",
    "brick",
    "grass",
    "gravel",
    "clock",
    "china",
    "flower",
    "motorcycle_left",
    "motorcycle_right",
)
PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "litert-torch",
    "ai-edge-litert",
    "ai-edge-quantizer",
)


def photos() -> dict[str, Image.Image]:
    from skimage import data
    from sklearn.datasets import load_sample_image

    images = {}
    for name in TEST_PHOTOS + OTHER_PHOTOS:
        if name in ("china", "flower"):
            array = load_sample_image(f"{name}.jpg")
        elif name.startswith("motorcycle"):
            array = data.stereo_motorcycle()[0 if name.endswith("left") else 1]
        else:
            array = getattr(data, name)()
        images[name] = Image.fromarray(array).convert("RGB")
    return images


def crops(pool: list[Image.Image], count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        image = pool[i % len(pool)]
        scale = rng.uniform(0.3, 1.0)
        width = int(image.width * scale)
        height = min(image.height, int(image.height * scale * rng.uniform(0.8, 1.25)))
        left = int(rng.integers(0, image.width - width + 1))
        top = int(rng.integers(0, image.height - height + 1))
        crop = image.crop((left, top, left + width, top + height))
        out.append(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return out


def latencies(files: dict, image: np.ndarray, threads: int, runs: int) -> dict:
    """Median, p10, p90 milliseconds of one batch-1 prediction per file, after 10 warm-up runs.

    The files take turns in a shuffled order on every round, so that load from other processes on a shared
    machine falls on all of them alike and their ratios stay meaningful.
    """
    predictors = {key: runtime.load(path, num_threads=threads) for key, path in files.items()}
    for predictor in predictors.values():
        for _ in range(10):
            predictor.predict_batch(image)
    times: dict = {key: [] for key in predictors}
    keys = list(predictors)
    rng = np.random.default_rng(0)
    for _ in range(runs):
        for index in rng.permutation(len(keys)):
            start = time.perf_counter()
            predictors[keys[index]].predict_batch(image)
            times[keys[index]].append((time.perf_counter() - start) * 1000)
    return {
        key: (float(np.median(t)), float(np.percentile(t, 10)), float(np.percentile(t, 90)))
        for key, t in times.items()
    }


def outputs(path: Path, images: np.ndarray) -> np.ndarray:
    return runtime.load(path).predict_batch(images)


def onnx_s8s8(float_file: Path, out: Path, calibration: np.ndarray) -> Path:
    """The same static QDQ quantization with int8 activations (quantize_static's default), for comparison."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader:
        def __init__(self):
            self.images = iter(calibration)

        def get_next(self):
            image = next(self.images, None)
            return None if image is None else {"input": image[None]}

    prepared = out / "prepared.onnx"
    quant_pre_process(str(float_file), str(prepared))
    target = out / "lite0_int8_s8s8.onnx"
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    prepared.unlink()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed runs per configuration (default 100)")
    parser.add_argument("--steps", type=int, default=500, help="calibration images (default 500)")
    parser.add_argument("--out", type=Path, default=None, help="keep the exported files in this folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    out = args.out or Path(tempfile.mkdtemp(prefix="effnet-export-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    model = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    transform = transforms_for(model)
    pool = photos()
    test = np.stack([transform(pool[name]) for name in TEST_PHOTOS])
    calibration = np.stack([transform(c) for c in crops(list(pool.values()), args.steps, seed=1)])
    held_out = np.stack([transform(c) for c in crops(list(pool.values()), 300, seed=2)])
    representative = np.concatenate([calibration, held_out[:64]])

    files: dict[tuple[str, str], Path] = {}
    build_s: dict[tuple[str, str], float] = {}

    def build(engine: str, kind: str, export) -> None:
        start = time.perf_counter()
        files[engine, kind] = export()
        build_s[engine, kind] = time.perf_counter() - start

    build("onnx", "float", lambda: export_onnx(model, out / "lite0.onnx"))
    build("onnx", "fp16", lambda: export_onnx(model, out / "lite0_fp16.onnx", quantize="fp16"))
    int8_config = QuantizationConfig("int8", representative, quantization_steps=args.steps)
    build("onnx", "int8", lambda: export_onnx(model, out / "lite0_int8.onnx", quantize=int8_config))
    build("onnx", "int8 S8S8", lambda: onnx_s8s8(files["onnx", "float"], out, calibration))
    build("onnx", "dynamic", lambda: export_onnx(model, out / "lite0_dynamic.onnx", quantize="dynamic"))
    try:
        import litert_torch  # noqa: F401

        has_litert = True
    except ImportError:
        has_litert = False
    if has_litert:
        build("tflite", "float", lambda: export_tflite(model, out / "lite0.tflite"))
        build("tflite", "fp16", lambda: export_tflite(model, out / "lite0_fp16.tflite", "fp16"))
        uint8 = QuantizationConfig.for_int8(representative, quantization_steps=args.steps)
        build("tflite", "int8", lambda: export_tflite(model, out / "lite0_int8.tflite", uint8))
        build("tflite", "dynamic", lambda: export_tflite(model, out / "lite0_dynamic.tflite", "dynamic"))

    print(f"Machine: {describe()}")
    print("Versions: " + ", ".join(f"{name} {_version(name)}" for name in PACKAGES))
    print(
        f"Files in {out}; latency: batch 1, 10 warm-up runs, {args.runs} timed runs, through effnet.runtime"
    )
    print()
    print("| engine | file | size MB | vs float | build s | 1 thread ms (p10-p90) | 2 threads ms (p10-p90) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    image = test[1:2]
    timed = {threads: latencies(files, image, threads, args.runs) for threads in (1, 2)}
    for (engine, kind), path in files.items():
        size = path.stat().st_size
        ratio = size / files[engine, "float"].stat().st_size
        cells = [f"{m:.2f} ({p10:.2f}-{p90:.2f})" for m, p10, p90 in (timed[t][engine, kind] for t in (1, 2))]
        print(
            f"| {engine} | {kind} | {size / 1e6:.2f} | {ratio:.0%} | {build_s[engine, kind]:.0f} | "
            f"{cells[0]} | {cells[1]} |"
        )
    print()
    for engine in ("onnx", "tflite"):
        if (engine, "int8") in files:
            ratios = [timed[t][engine, "int8"][0] / timed[t][engine, "float"][0] for t in (1, 2)]
            print(
                f"{engine} int8 / float median latency: {ratios[0]:.2f} (1 thread), "
                f"{ratios[1]:.2f} (2 threads)"
            )

    print()
    print(
        f"Top-1 agreement with the float file: {len(TEST_PHOTOS)} photos whole, "
        f"{len(held_out)} held-out crops"
    )
    print("| engine | file | photos | held-out crops | confident crops | max abs logit diff |")
    print("|---|---|---:|---:|---:|---:|")
    for engine in ("onnx", "tflite"):
        if (engine, "float") not in files:
            continue
        reference_test = outputs(files[engine, "float"], test)
        reference = outputs(files[engine, "float"], held_out)
        probabilities = runtime.softmax(reference)
        confident = probabilities.max(axis=1) >= 0.5
        for kind in [k for e, k in files if e == engine and k != "float"]:
            got_test = outputs(files[engine, kind], test)
            got = outputs(files[engine, kind], held_out)
            photos_agree = int((got_test.argmax(1) == reference_test.argmax(1)).sum())
            agree = got.argmax(1) == reference.argmax(1)
            print(
                f"| {engine} | {kind} | {photos_agree}/{len(test)} | {agree.mean():.3f} | "
                f"{agree[confident].mean():.3f} (n={int(confident.sum())}) | "
                f"{np.abs(got - reference).max():.3f} |"
            )
    predictions = runtime.load(files["tflite" if has_litert else "onnx", "int8"]).predict(
        [pool[name] for name in TEST_PHOTOS], top_k=1
    )
    print()
    print(
        "int8 top-1 on the photos: "
        + ", ".join(
            f"{name}: {p[0].label} ({p[0].probability:.2f})"
            for name, p in zip(TEST_PHOTOS, predictions, strict=True)
        )
    )
    if not has_litert:
        print('LiteRT rows skipped: pip install "effnet[litert]"')


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
