"""Which post-training choices move the int8 accuracy of a transfer-learned classifier (one model, digits).

Trains one classifier with Model Maker's defaults (frozen pretrained backbone, linear head) on a seeded 50/50
split of scikit-learn's digits, then exports int8 `.onnx` files that differ in one choice each and evaluates
every file with `effnet.runtime` on the test half:

- `default`: the portable int8 format (7-bit paired weights, GPTQ rounding), 500 calibration images, bias
  correction;
- `8-bit nearest`: `int8_format="vnni"`, nearest rounding (the format ONNX Runtime's own quantizer writes);
- `8-bit nearest, no bias correction`;
- `8-bit nearest, 100 calibration images`;
- `8-bit nearest, percentile 99.999` / `99.99`: activation ranges from ONNX Runtime's percentile calibration
  instead of min/max (100 calibration images: its histograms keep every activation in memory);
- `QAT N steps`: `finetune_steps=N` quantization-aware fine-tuning before export (`--qat-steps`, 0 skips).

Run: .venv/bin/python benchmarks/int8_transfer_options.py [--model mobilenet_v2_100] [--qat-steps 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import onnxruntime.quantization as ort_quantization
import torch

from effnet import runtime
from effnet.data.samples import write_digits_folder
from effnet.export import QuantizationConfig
from effnet.image_classifier import DataLoader, create
from machine import describe


@contextmanager
def calibration_method(method, extra: dict):
    """ONNX Runtime's `quantize_static` with ``method`` and ``extra`` options instead of effnet's min/max."""
    original = ort_quantization.quantize_static

    def replaced(*args, **kwargs):
        kwargs["calibrate_method"] = method
        kwargs["extra_options"] = {**kwargs.get("extra_options", {}), **extra}
        return original(*args, **kwargs)

    ort_quantization.quantize_static = replaced
    try:
        yield
    finally:
        ort_quantization.quantize_static = original


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="mobilenet_v2_100")
    parser.add_argument("--qat-steps", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    print(describe())
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp())
    train_data, test_data = DataLoader.from_folder(write_digits_folder(work / "digits")).split(0.5, seed=0)
    classifier = create(train_data, model_spec=args.model)
    rows = [{"variant": "PyTorch float", "accuracy": classifier.evaluate(test_data)[1], "seconds": 0.0}]
    print(f"| {args.model} digits | PyTorch float | {100 * rows[0]['accuracy']:.2f} |", flush=True)
    nearest = {"int8_format": "vnni", "weight_rounding": "nearest"}
    percentile = ort_quantization.CalibrationMethod.Percentile
    variants = [
        ("default (portable, GPTQ)", {}, None),
        ("8-bit nearest", nearest, None),
        ("8-bit nearest, no bias correction", {**nearest, "bias_correction": False}, None),
        ("8-bit nearest, 100 calibration images", {**nearest, "quantization_steps": 100}, None),
        ("8-bit nearest, percentile 99.999", {**nearest, "quantization_steps": 100}, (percentile, 99.999)),
        ("8-bit nearest, percentile 99.99", {**nearest, "quantization_steps": 100}, (percentile, 99.99)),
    ]
    if args.qat_steps:
        variants.append((f"QAT {args.qat_steps} steps", {"finetune_steps": args.qat_steps}, None))
    for n, (name, options, calibration) in enumerate(variants):
        start = time.time()
        config = QuantizationConfig("int8", classifier.train_data, **options)
        if calibration is None:
            files = classifier.export(work / str(n), export_format=["onnx"], quantization_config=config)
        else:
            method, value = calibration
            with calibration_method(method, {"CalibPercentile": value}):
                files = classifier.export(work / str(n), export_format=["onnx"], quantization_config=config)
        accuracy = runtime.load(files["onnx"]).evaluate(test_data)["accuracy"]
        rows.append({"variant": name, "accuracy": accuracy, "seconds": round(time.time() - start, 1)})
        seconds = rows[-1]["seconds"]
        print(f"| {args.model} digits | {name} | {100 * accuracy:.2f} | ({seconds} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "machine": describe(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
