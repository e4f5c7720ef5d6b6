"""`effnet demo`: build a model, run it, and show what it costs (the main job until training lands)."""

from __future__ import annotations

import argparse
import time

import torch

from effnet.models import create_model
from effnet.profile import profile


def cmd_demo(args: argparse.Namespace) -> int:
    model = create_model(args.model).eval()
    counted = profile(model)
    height, width = model.preprocessing.input_size
    x = torch.randn(1, 3, height, width)
    with torch.inference_mode():
        model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(args.runs):
            logits = model(x)
        latency = (time.perf_counter() - start) / args.runs * 1000
    print(f"{args.model}: {counted.params:,} params, {counted.macs / 1e6:.0f}M MACs at {height}x{width}")
    print(
        f"output {tuple(logits.shape)}, {latency:.1f} ms per image "
        f"(PyTorch eager, {torch.get_num_threads()} threads)"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build a model and run it once")
    p.add_argument("--model", default="efficientnet_lite0", help="model name (default: efficientnet_lite0)")
    p.add_argument("--runs", type=int, default=10, help="timed runs (default: 10)")
    p.set_defaults(func=cmd_demo)
