"""int8 vs float accuracy of a transfer-learned classifier, through each exported engine.

Takes a run folder written by `effnet train` (e.g. the one `make demo` writes), exports it as float and as
int8 (.tflite with uint8 I/O and .onnx QDQ, calibrated on the run's training images) and evaluates every file
on the run's test split with `effnet.runtime`.

Run: .venv/bin/python benchmarks/int8_transfer.py runs/digits-lite0
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from effnet import runtime
from effnet.image_classifier import DataLoader, load
from machine import describe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="run folder written by `effnet train` (needs splits.json)")
    args = parser.parse_args()
    run = Path(args.run_dir)
    print(describe())
    splits = json.loads((run / "splits.json").read_text())
    model = load(run)
    labels = model.index_to_label

    def dataset(paths: list[str]) -> DataLoader:
        return DataLoader.from_samples(paths, [labels.index(Path(p).parent.name) for p in paths], labels)

    test = dataset(splits["test"])
    model.train_data = dataset(splits["train"])
    accuracy = model.evaluate(test)[1]
    print(f"\n{model.model_spec.name}, {len(test)} test images; PyTorch float accuracy {accuracy:.4f}")
    print("\n| engine | file | MB | test accuracy |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for quantization, tag in ((None, "float32"), ("default", "int8")):
            files = model.export(
                Path(folder) / tag, export_format=["tflite", "onnx"], quantization_config=quantization
            )
            for engine, path in files.items():
                accuracy = runtime.load(path).evaluate(test)["accuracy"]
                print(f"| {engine} | {tag} | {path.stat().st_size / 1e6:.2f} | {accuracy:.4f} |")


if __name__ == "__main__":
    main()
