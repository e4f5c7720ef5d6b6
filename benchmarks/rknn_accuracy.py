"""Accuracy of .rknn files in rknn-toolkit2's simulator, beside the same models' .onnx / .tflite int8 files.

1. A trained Lite0 classifier (Model Maker defaults: frozen bundled ImageNet backbone, 224 px) on
   scikit-learn's digits, the seeded 50/50 split of int8_accuracy.py: test accuracy in PyTorch, of the int8
   .onnx file and of the int8 .rknn file (calibrated on the training images, rknn-toolkit2's "normal"
   algorithm; ``--algorithms normal,mmse`` adds others).
2. Trained recognition embedders (quantized_embeddings.py's recipe: Lite0 with each head, 3 epochs of
   ArcFace on identities 0-6 of digits or textures, 112 px): mean cosine of each file's embeddings to
   PyTorch's (200 images of the held-out identities 7-9) and its verification accuracy on pairs of them
   (`Embedder.export(..., validation_data=held_out)`), for int8 and int16 .rknn files and the int8 .onnx /
   .tflite files (nearest rounding, bias correction: the protocol of quantized_embeddings.py).

Files for ``--target`` (default rk3588). The simulator runs the quantized model on x86; NPU latency it does
not give.

    python benchmarks/rknn_accuracy.py --out benchmarks/results/rknn-accuracy.md
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from effnet import image_classifier, runtime
from effnet.data.samples import write_digits_folder
from effnet.export import QuantizationConfig
from machine import describe, log_seconds, save_table
from quantized_embeddings import dataset_folder, trained
from recognition_digits import open_set_split

CALIBRATION_IMAGES = 200


def classifier_rows(work: Path, target: str, algorithms: list[str]) -> list[str]:
    data = image_classifier.DataLoader.from_folder(write_digits_folder(work / "digits-classes"), seed=0)
    train, test = data.split(0.5, seed=0)
    began = time.perf_counter()
    model = image_classifier.create(train, model_spec="efficientnet_lite0")
    log_seconds("Lite0 classifier training", began)
    lines = [
        "| Lite0 classifier, digits | test images | accuracy |",
        "|---|---:|---:|",
        f"| PyTorch (float) | {len(test)} | {model.evaluate(test)[1]:.4f} |",
    ]
    print("\n".join(lines), flush=True)
    onnx = model.export(work / "classifier", export_format="onnx")["onnx"]
    lines.append(f"| .onnx int8 | {len(test)} | {runtime.load(onnx).evaluate(test)['accuracy']:.4f} |")
    print(lines[-1], flush=True)
    for algorithm in algorithms:
        began = time.perf_counter()
        path = model.export(
            work / f"classifier-{algorithm}",
            export_format="rknn",
            target=target,
            rknn_algorithm=algorithm,
        )["rknn"]
        predictor = runtime.load(path)
        accuracy = predictor.evaluate(test)["accuracy"]
        predictor.close()
        lines.append(f"| .rknn int8 ({target}, {algorithm}) | {len(test)} | {accuracy:.4f} |")
        print(lines[-1], flush=True)
        log_seconds(f"rknn int8 {algorithm}", began)
    return lines


def embedder_rows(work: Path, dataset: str, heads: list[str], target: str, formats: list[str]) -> list[str]:
    columns = [("rknn", "int8"), ("rknn", "int16"), *((f, "int8") for f in formats)]
    lines = [
        f"| Lite0 embedder, {dataset} | float acc | "
        + " | ".join(f".{f} {m} cosine / acc" for f, m in columns)
        + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    print("\n".join(lines), flush=True)
    train, held_out = open_set_split(dataset_folder(dataset, work))
    calibration = train.shuffled(seed=0)
    for head in heads:
        model = trained("efficientnet_lite0", head, train, 3, work / "models", dataset)
        float_accuracy = model.evaluate_verification(held_out, seed=0)["accuracy"]
        cells = []
        for file_format, mode in columns:
            began = time.perf_counter()
            config = QuantizationConfig(mode, calibration, CALIBRATION_IMAGES, weight_rounding="nearest")
            folder = work / f"{dataset}-{head}-{file_format}-{mode}"
            result = model.export(folder, file_format, config, validation_data=held_out, target=target)[
                file_format
            ]
            cells.append(f"{result['mean_cosine']:.4f} / {result['verification']['accuracy']:.3f}")
            log_seconds(f"{dataset} {head} {file_format} {mode}", began)
        lines.append(f"| {head} | {float_accuracy:.3f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--target", default="rk3588")
    parser.add_argument("--parts", default="classifier,digits,textures")
    parser.add_argument("--heads", default="gap,gdc,flatten")
    parser.add_argument("--algorithms", default="normal", help="the classifier's .rknn calibration")
    parser.add_argument("--formats", default="onnx,tflite", help="embedder int8 files beside the .rknn ones")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="write the tables (markdown) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("effnet.export").setLevel(logging.ERROR)
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for part in args.parts.split(","):
            if lines:
                lines.append("")
            if part == "classifier":
                lines += classifier_rows(work, args.target, args.algorithms.split(","))
            else:
                lines += embedder_rows(
                    work, part, args.heads.split(","), args.target, args.formats.split(",")
                )
    footer = (
        f"\n.rknn files for {args.target} run in rknn-toolkit2 2.5's simulator (int8 = w8a8, int16 = "
        f"w16a16i_dfp); embedder files calibrated on {CALIBRATION_IMAGES} training images; cosine = mean "
        "cosine similarity to PyTorch on 200 held-out images, acc = verification accuracy (10 folds, flip "
        f"test) on held-out identities. Machine: {describe()}."
    )
    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
