"""The README's measurement table: for each model, params, MACs, float / int8 file sizes and batch-1 latency
of ONNX Runtime and LiteRT files, float and int8, at 1 and 2 threads; plus the accuracy-vs-latency plot.

Every number comes from `effnet.bench.run_bench` (the same call as `effnet bench`). Weights are random: size
and latency do not depend on them (int8 files are calibrated on crops of real photos all the same).
Results: benchmarks/results/<machine kind>.json (all rows), .md (this table) and .png/.svg (the plot).

Run: .venv/bin/python benchmarks/bench_table.py [--runs 50] [--models ...] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from effnet.bench import plot_accuracy_latency, run_bench
from effnet.checkpoint import write_json, write_text
from effnet.cli.table import human_count
from machine import describe

MODELS = (
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite3",
    "efficientnet_lite4",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "mobilenet_v2_100",
    "mobilenet_v3_large_100",
)
FORMATS = ("onnx", "onnx-int8", "tflite", "tflite-int8")
THREADS = (1, 2)
RESULTS = Path(__file__).parent / "results"


def machine_kind() -> str:
    """e.g. cpu-2core: results of different machines never overwrite each other."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"cpu-{cores}core"


def markdown(rows: list[dict]) -> str:
    by_key = {(r["model"], r["format"], r["threads"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))

    def size(model: str, fmt: str) -> str:
        row = by_key.get((model, fmt, THREADS[0]))
        return f"{row['size_bytes'] / 1e6:.1f}" if row and row["size_bytes"] else "-"

    def latency(model: str, fmt: str, threads: int) -> str:
        row = by_key.get((model, fmt, threads))
        if not row or row["latency_ms_median"] is None:
            return "-"
        return f"{row['latency_ms_median']:.1f}" + ("*" if row["noisy"] else "")

    lines = [
        "| model | params | MACs | top-1 (ref) | ONNX MB float / int8 | .tflite MB float / int8 "
        "| ORT ms float 1t / 2t | ORT ms int8 1t / 2t | LiteRT ms float 1t / 2t | LiteRT ms int8 1t / 2t |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model in models:
        first = next(r for r in rows if r["model"] == model)
        top1 = f"{first['top1_reference']:.1f}" if first["top1_reference"] else "-"
        cells = [
            f"`{model}`",
            f"{first['params'] / 1e6:.2f}M",
            human_count(first["macs"]),
            top1,
            f"{size(model, 'onnx')} / {size(model, 'onnx-int8')}",
            f"{size(model, 'tflite')} / {size(model, 'tflite-int8')}",
        ]
        for fmt in FORMATS:
            cells.append(" / ".join(latency(model, fmt, t) for t in THREADS))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per measurement (default 50)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: the README's)")
    parser.add_argument("--workdir", default=None, help="keep the exported files here, reuse them next time")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args()

    machine = describe()
    rows = run_bench(
        models=args.models.split(","),
        formats=FORMATS,
        threads=THREADS,
        runs=args.runs,
        workdir=args.workdir,
    )
    kind = machine_kind()
    table = markdown(rows)
    command = f"python benchmarks/bench_table.py --runs {args.runs}"
    if args.models != ",".join(MODELS):
        command += f" --models {args.models}"
    header = (
        f"<!-- {command} -->\n"
        f"Machine: {machine}\n\n"
        f"Batch 1, median of {args.runs} runs after 5 warm-up runs; * = p90/median stayed above 1.5 "
        "after two repeats (a busy machine)."
    )
    print(header)
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{kind}.json", {"machine": machine, "command": command, "rows": rows})
    write_text(args.out / f"{kind}.md", f"{header}\n\n{table}\n")
    written = plot_accuracy_latency(
        [r for r in rows if r["format"] in ("onnx", "onnx-int8") and r["threads"] == 1],
        args.out / f"{kind}.png",
        title=f"ImageNet top-1 (reference) vs ONNX Runtime latency, 1 thread, {kind}",
    )
    print(f"\nwrote {args.out / kind}.json, .md, {', '.join(p.name for p in written)}")


if __name__ == "__main__":
    main()
