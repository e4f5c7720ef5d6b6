""".rknn file sizes of recognition embedders, beside the field report behind effnet's recognition mode.

The report deployed EfficientNet-B0..B3 embedders (112x112, 512-d) and IResNet-50 on a Rockchip RV1126 NPU
in int16 and gave the .rknn sizes (and NPU latencies, which a simulator cannot give). This script builds the
same models with each head (flatten: the report's; gdc; gap, close to its "class layer reused as the
embedding" B0), converts each to int8 and int16 .rknn files for ``--target`` (rk3588 by default) with
`effnet.export.rknn.export_rknn` (rknn-toolkit2 2.5, `make rknn-env`) and prints their sizes in a table.

Sizes depend on the architecture, not on the weights: the models are untrained (random initialization, the
batch-norm statistics of a few random batches, so that activations have a trained model's spread: raw
IResNet-50 activations overflow int16) and calibrated on a few random images, which keeps the script to
minutes.

    python benchmarks/rknn_sizes.py --out benchmarks/results/rknn-sizes.md
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from effnet import create_embedder
from effnet.export.rknn import export_rknn
from machine import describe, log_seconds, save_table

BACKBONES = ("efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3")
HEADS = ("flatten", "gdc", "gap")
MODES = ("int8", "int16")
# The field report's int16 .rknn sizes (MB) on the RV1126 (rknn-toolkit v1): flatten heads, and B0 with the
# class layer reused as the embedding (listed here beside gap, the nearest head)
REPORTED = {
    ("efficientnet_b0", "flatten"): 25.8,
    ("efficientnet_b1", "flatten"): 33.0,
    ("efficientnet_b2", "flatten"): 39.7,
    ("efficientnet_b3", "flatten"): 47.3,
    ("efficientnet_b0", "gap"): 9.3,
}
CALIBRATION_IMAGES = 8


def warmed_up(network: torch.nn.Module, batches: int = 3) -> torch.nn.Module:
    """Batch-norm statistics from random images: fresh ones (mean 0, variance 1) let activations grow layer
    after layer, far beyond a trained model's."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average over the batches
    network.train()
    with torch.no_grad():
        for _ in range(batches):
            network(torch.randn(8, 3, 112, 112, generator=generator))
    return network.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--target", default="rk3588")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--heads", default=",".join(HEADS))
    parser.add_argument("--iresnet", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    logging.getLogger("effnet.export").setLevel(logging.ERROR)  # untrained models: agreement is noise
    backbones = [name for name in args.backbones.split(",") if name]
    models = [(b, h) for b in backbones for h in args.heads.split(",")]
    if args.iresnet:
        models.append(("iresnet50", "flatten"))
    lines = [
        "| model | head | params | int8 .rknn MB | int16 .rknn MB | report (RV1126, int16) MB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    failures: list[str] = []
    rng = np.random.default_rng(0)
    images = rng.standard_normal((CALIBRATION_IMAGES + 4, 3, 112, 112)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        for backbone, head in models:
            network = warmed_up(create_embedder(backbone, head, 512, input_size=112))
            params = sum(p.numel() for p in network.parameters())
            sizes = []
            for mode in MODES:
                began = time.perf_counter()
                try:
                    path = export_rknn(
                        network,
                        Path(folder) / f"{backbone}-{head}-{mode}.rknn",
                        mode,
                        args.target,
                        images,
                        quantization_steps=CALIBRATION_IMAGES,
                    )
                    sizes.append(f"{path.stat().st_size / 1e6:.1f}")
                except RuntimeError as error:  # the toolkit refused the model: the cell says why
                    failures.append(f"{backbone} {head} {mode}: {error}")
                    sizes.append(f"fails ({len(failures)})")
                log_seconds(f"{backbone} {head} {mode}", began)
            reported = REPORTED.get((backbone, head))
            line = (
                f"| {backbone} | {head} | {params / 1e6:.1f}M | {sizes[0]} | {sizes[1]} | "
                f"{reported if reported is not None else '-'} |"
            )
            lines.append(line)
            print(line, flush=True)
    footer = (
        f"\n.rknn files for {args.target} (rknn-toolkit2 2.5; int8 = w8a8, int16 = w16a16i_dfp: 16-bit "
        f"weights and activations), 112x112 input, 512-d embeddings. Machine: {describe()}."
    )
    footer += "".join(f"\n\n({index}) {failure}" for index, failure in enumerate(failures, 1))
    save_table(args.out, lines, footer)


if __name__ == "__main__":
    main()
