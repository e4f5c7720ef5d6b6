"""Issue 4's numbers: the Model Maker workflow on scikit-learn's real handwritten digits (1,797 images,
10 classes), EfficientNet-Lite0 with the bundled ImageNet weights, at 224 px, on this machine's CPU.

  1. frozen backbone on 1,000 training images: wall time of create(), test accuracy on the other 797,
     then the mean and spread of that accuracy over 5 random splits
  2. frozen backbone on the standard 80/10/10 split (train / validation / test)
  3. fine-tuning (train_whole_model=True, starting from the frozen-feature head) on the same split, without
     augmentation: flips and tight crops change what a handwritten digit is

Run: .venv/bin/python benchmarks/model_maker_digits.py [--skip-fine-tune] [--fine-tune-epochs 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from effnet import image_classifier
from effnet.cli.train import split_data
from effnet.data.samples import write_digits_folder
from effnet.image_classifier import DataLoader
from machine import describe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skip-fine-tune", action="store_true")
    parser.add_argument("--fine-tune-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5, help="random splits for the frozen accuracy spread")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    print(describe())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = DataLoader.from_folder(write_digits_folder(folder))

        train, test = data.split(1000 / len(data), seed=0)
        began = time.perf_counter()
        model = image_classifier.create(train, model_spec="efficientnet_lite0")
        seconds = time.perf_counter() - began
        rows.append(("frozen, 1,000 train images", len(train), len(test), seconds, model.evaluate(test)[1]))
        accuracies = [rows[-1][-1]]
        for seed in range(1, args.seeds):
            train, test = data.split(1000 / len(data), seed=seed)
            accuracies.append(image_classifier.create(train, seed=seed).evaluate(test)[1])
        spread = f"{np.mean(accuracies):.4f} ± {np.std(accuracies):.4f}"
        rows.append((f"frozen, 1,000 train images, {args.seeds} splits", len(train), len(test), None, spread))

        train, val, test = split_data(data, 0.1, 0.1, seed=0)
        began = time.perf_counter()
        frozen = image_classifier.create(train, model_spec="efficientnet_lite0", validation_data=val)
        seconds = time.perf_counter() - began
        rows.append(("frozen, 80/10/10 split", len(train), len(test), seconds, frozen.evaluate(test)[1]))

        if not args.skip_fine_tune:
            began = time.perf_counter()
            tuned = image_classifier.create(
                train,
                model_spec="efficientnet_lite0",
                validation_data=val,
                train_whole_model=True,
                epochs=args.fine_tune_epochs,
            )
            seconds = time.perf_counter() - began
            label = f"fine-tuned {args.fine_tune_epochs} epochs, 80/10/10 split"
            rows.append((label, len(train), len(test), seconds, tuned.evaluate(test)[1]))

    print("\n| run | train images | test images | create() seconds | test accuracy |")
    print("|---|---:|---:|---:|---:|")
    for name, n_train, n_test, seconds, accuracy in rows:
        seconds = "-" if seconds is None else f"{seconds:.1f}"
        accuracy = accuracy if isinstance(accuracy, str) else f"{accuracy:.4f}"
        print(f"| {name} | {n_train} | {n_test} | {seconds} | {accuracy} |")
    if args.json:
        keys = ("run", "train_images", "test_images", "seconds", "test_accuracy")
        with open(args.json, "w") as handle:
            json.dump([dict(zip(keys, row, strict=True)) for row in rows], handle, indent=2)


if __name__ == "__main__":
    main()
