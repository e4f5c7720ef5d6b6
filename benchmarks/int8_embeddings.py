"""int8 embeddings: mean cosine similarity of int8 files' embeddings to the float model's, for Lite backbones.

For each backbone (the bundled pretrained Lite0-2) x head (gap, gdc, flatten) x dataset (scikit-image's LFW
faces, scikit-learn's digits), at 112 px with a 512-d embedding: the head's BatchNorm statistics are set on
the calibration images (its weights stay untrained: no identity data to train them on offline at this
size), the model is exported to int8 ONNX (and .tflite with --tflite) with and without per-layer bias
correction, calibrated on the first half of the images, and compared to PyTorch on the other half.

Untrained heads are a stress test, not the deployed case: a BatchNorm whose statistics come from 100 images
multiplies near-constant channels by up to 1/sqrt(eps) = 316, and every small error with them. Trained
embedders, in int8 and int16: benchmarks/quantized_embeddings.py.

    python benchmarks/int8_embeddings.py [--backbones efficientnet_lite0 ...] [--tflite] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import effnet
from effnet import runtime
from effnet.data.transforms import EvalTransform
from effnet.export import QuantizationConfig, export_onnx, export_tflite
from machine import describe, log_seconds, save_table

HEADS = ("gap", "gdc", "flatten")
BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def dataset_images(name: str, count: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    if name == "lfw":
        from skimage import data

        faces = data.lfw_subset()  # 200 grey 25x25 faces in [0, 1]
        pixels = [(faces[i] * 255).astype(np.uint8) for i in rng.permutation(len(faces))[:count]]
    else:
        from sklearn.datasets import load_digits

        digits = load_digits().images  # 8x8 in [0, 16]
        pixels = [(digits[i] * 255 / 16).astype(np.uint8) for i in rng.permutation(len(digits))[:count]]
    return [Image.fromarray(p).convert("RGB") for p in pixels]


def set_head_statistics(model: torch.nn.Module, images: np.ndarray) -> None:
    """BatchNorm statistics of the (untrained) head from real images, so its outputs have real scales."""
    norms = [m for m in model.head.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    model.eval()
    for norm in norms:
        norm.train()
    with torch.no_grad():
        for start in range(0, len(images), 50):
            model(torch.from_numpy(images[start : start + 50]))
    model.eval()


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--datasets", nargs="+", default=["lfw", "digits"], choices=["lfw", "digits"])
    parser.add_argument("--images", type=int, default=200, help="per dataset: half calibrate, half test")
    parser.add_argument("--tflite", action="store_true", help="also .tflite (LiteRT) files")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    started = f"Machine: {describe()}."
    exporters = {"ONNX": export_onnx, **({"LiteRT": export_tflite} if args.tflite else {})}
    header = "| backbone | head | data | " + " | ".join(
        f"{engine} plain | {engine} corrected" for engine in exporters
    )
    lines = [header + " |", "|---|---|---|" + "---:|---:|" * len(exporters)]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as work:
        for backbone in args.backbones:
            for head in args.heads:
                model = effnet.create_embedder(
                    backbone, head=head, embedding_dim=512, input_size=112, pretrained=True
                )
                transform = EvalTransform(model.preprocessing)
                for data in args.datasets:
                    images = np.stack([transform(i) for i in dataset_images(data, args.images)])
                    calibration, test = np.split(images, 2)
                    set_head_statistics(model, calibration)
                    with torch.no_grad():
                        reference = model(torch.from_numpy(test)).numpy()
                    cells = []
                    for engine, export in exporters.items():
                        for corrected in (False, True):
                            began = time.perf_counter()
                            path = export(
                                model,
                                Path(work)
                                / f"{engine}{corrected}{'.onnx' if engine == 'ONNX' else '.tflite'}",
                                QuantizationConfig("int8", calibration, bias_correction=corrected),
                            )
                            cosine = mean_cosine(runtime.load(path).predict_batch(test), reference)
                            cells.append(f"{cosine:.4f}")
                            log_seconds(f"{engine}, corrected={corrected}", began)
                    line = f"| `{backbone}` | {head} | {data} | " + " | ".join(cells) + " |"
                    lines.append(line)
                    print(line, flush=True)
    footer = (
        f"\n{started}\n\nMean cosine similarity of int8 embeddings to PyTorch's on {args.images // 2} test "
        f'images per dataset ({args.images // 2} calibration images); 112 px, 512-d; "corrected" = per-layer '
        "bias correction (the default)."
    )
    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
