"""Fine-tuning throughput (images/s) of EfficientNet-Lite0 and B0: forward + backward + SGD step, the way
`effnet train --fine-tune` runs it (effnet.image_classifier.fine_tuning.Precision, make_optimizer, label
smoothing), on batches already in memory: the model's speed, not the decoder's (decoding scales with
--workers and cores; see docs/distributed.md).

On CUDA: batch 128 at 224 px, bf16 autocast + channels_last (and fp32 for comparison), optionally
torch.compile. On a CPU-only machine the GPU rows are skipped with a message, and a small CPU batch is
measured instead so the script prints real numbers anywhere.

Run: .venv/bin/python benchmarks/train_throughput.py [--models efficientnet_lite0 efficientnet_b0]
         [--batch-size 128] [--cpu-batch-size 8] [--steps 20] [--compile]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from effnet import create_model
from effnet.image_classifier.fine_tuning import Precision
from effnet.image_classifier.hparams import HParams
from effnet.image_classifier.training import make_optimizer
from machine import describe


def images_per_second(
    name: str, device: torch.device, batch: int, size: int, precision: str, steps: int, compile_: bool
) -> float:
    torch.manual_seed(0)
    model = create_model(name, num_classes=1000).to(device, memory_format=torch.channels_last).train()
    optimizer = make_optimizer(model, HParams())
    amp = Precision(precision, device)
    runner = torch.compile(model) if compile_ else model
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        with amp.autocast():
            loss = loss_fn(runner(x).float(), y)
        amp.scaler.scale(loss).backward()
        amp.scaler.step(optimizer)
        amp.scaler.update()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3 if not compile_ else 5):  # warm-up (cudnn autotuning, compilation)
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["efficientnet_lite0", "efficientnet_b0"])
    parser.add_argument("--batch-size", type=int, default=128, help="GPU batch (default: 128)")
    parser.add_argument("--cpu-batch-size", type=int, default=8, help="CPU batch (default: 8)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20, help="timed steps on GPU (CPU: a quarter)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (GPU)")
    args = parser.parse_args()
    print(describe())
    rows = []
    if torch.cuda.is_available():
        device = torch.device("cuda")
        print(f"GPU: {torch.cuda.get_device_name(0)}")
        torch.backends.cudnn.benchmark = True
        variants = [("bf16", False), ("fp32", False)] + ([("bf16", True)] if args.compile else [])
        for name in args.models:
            for precision, compile_ in variants:
                speed = images_per_second(
                    name, device, args.batch_size, args.image_size, precision, args.steps, compile_
                )
                rows.append(
                    (name, "cuda", args.batch_size, precision + (" +compile" if compile_ else ""), speed)
                )
    else:
        print(
            "skipped: no CUDA device here, so no GPU numbers (batch 128, bf16 + channels_last); "
            "run this script on a GPU machine to measure them. CPU numbers at a small batch follow."
        )
    cpu = torch.device("cpu")
    # measured even on a CPU without bf16 instructions, where effnet train refuses it (emulated: the slowdown)
    os.environ.setdefault("EFFNET_CPU_BF16", "1")
    for name in args.models:
        for precision in ("fp32", "bf16"):
            speed = images_per_second(
                name, cpu, args.cpu_batch_size, args.image_size, precision, max(2, args.steps // 4), False
            )
            rows.append((name, "cpu", args.cpu_batch_size, precision, speed))
    print(f"\nfine-tuning throughput, {args.image_size} px, channels_last, SGD step included")
    print(f"{'model':<20} {'device':<6} {'batch':>5} {'precision':<15} {'images/s':>9}")
    for name, device_name, batch, precision, speed in rows:
        print(f"{name:<20} {device_name:<6} {batch:>5} {precision:<15} {speed:>9.1f}")


if __name__ == "__main__":
    main()
