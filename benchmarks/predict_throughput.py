"""Batch prediction vs feature extraction, images/s, same model, same images, same run.

Feature extraction is what a frozen-backbone `image_classifier.create` spends its time on
(`effnet.image_classifier.training.extract_features`: decoding in worker processes, batched, channels_last,
no grad). Prediction should cost no more per image: `ImageClassifier.predict_top_k` on a list of paths and on
a DataLoader, `effnet.predict.predict_images` on a list of paths, and the `effnet predict --model RUN_DIR`
command (a fresh process: its rate counts model loading; the one-image run shows that fixed cost).

The images: ``--images`` real photo crops (scikit-image's textures sample, PNG, 90-190 px) in 10 classes;
the model: a Lite0 classifier on them at its own 224 px (a frozen-backbone run of one epoch: the speed,
not the accuracy, matters here). Each measurement runs ``--repeats`` times, interleaved, the best kept: the
machine may be shared, so compare the ratios of one run, not numbers across runs.

Run: .venv/bin/python benchmarks/predict_throughput.py [--images 200] [--repeats 3]
         [--out results/predict_throughput-cpu-2core.md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe, save_table


def best_rate(function, count: int, repeats: int) -> float:
    """Images/s of the fastest of ``repeats`` calls of ``function()`` over ``count`` images."""
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - began)
    return count / min(seconds)


def command_seconds(argv: list[str], repeats: int) -> float:
    """Wall seconds of the fastest of ``repeats`` runs of ``effnet ARGV`` in a fresh process."""
    command = [sys.executable, "-m", "effnet", *argv]
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - began)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write the markdown table here too")
    args = parser.parse_args()

    from effnet.data import EvalTransform, ImageDataset
    from effnet.data.samples import write_textures_folder
    from effnet.image_classifier import create
    from effnet.image_classifier.training import extract_features
    from effnet.predict import predict_images

    work = Path(tempfile.mkdtemp(prefix="predict-throughput-"))
    per_class = -(-args.images // 10)
    folder = write_textures_folder(work / "textures", per_class=per_class) / "train"
    data = ImageDataset.from_folder(folder, shuffle=False)
    data = data._subset(list(range(args.images))) if len(data) > args.images else data
    paths = data.paths
    classifier = create(data, model_spec=args.model, epochs=1)
    run = classifier.save(work / "run")
    network = classifier.network
    transform = EvalTransform(network.preprocessing)
    count = len(paths)

    rows = [
        (
            "feature extraction (training's extract_features)",
            lambda: extract_features(network, data, transform, 32, None, "features"),
        ),
        ("predict_top_k(list of paths)", lambda: classifier.predict_top_k(paths, k=1)),
        ("predict_top_k(DataLoader)", lambda: classifier.predict_top_k(data, k=1)),
        ("predict_images(network, paths)", lambda: predict_images(network, paths, top_k=5)),
    ]
    rates = {name: 0.0 for name, _ in rows}
    for _ in range(args.repeats):  # interleaved: a burst of load elsewhere hits every row alike
        for name, function in rows:
            rates[name] = max(rates[name], best_rate(function, count, 1))
    predict = ["predict", "--model", str(run), "--json"]
    one = command_seconds([*predict, paths[0]], args.repeats)
    everything = command_seconds([*predict, *paths], args.repeats)

    reference = rates[rows[0][0]]
    lines = [
        f"{describe()}; {args.model} at {network.preprocessing.input_size[0]} px, {count} images "
        f"(PNG photo crops, 10 classes), best of {args.repeats}",
        "",
        "| what | images/s | vs feature extraction |",
        "|---|---:|---:|",
    ]
    for name, rate in rates.items():
        lines.append(f"| {name} | {rate:.1f} | {rate / reference:.2f} |")
    command_rate = count / everything
    marginal = (count - 1) / max(everything - one, 1e-9)
    lines.append(
        f"| `effnet predict --model RUN_DIR` ({count} images, fresh process) | {command_rate:.1f} | "
        f"{command_rate / reference:.2f} |"
    )
    lines.append(
        f"| `effnet predict`, after start-up (({count} - 1) images / (t{count} - t1)) | {marginal:.1f} | "
        f"{marginal / reference:.2f} |"
    )
    for line in lines:
        print(line)
    footer = (
        f"\n`effnet predict` wall time: {one:.2f} s for 1 image, {everything:.2f} s for {count} images. "
        f"CPU threads: torch {os.environ.get('OMP_NUM_THREADS', 'default')}."
    )
    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
