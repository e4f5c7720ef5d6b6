"""`effnet bench`: size, params, MACs, latency and accuracy of models in each format, on this machine."""

from __future__ import annotations

import argparse
import json
import sys

from effnet.bench.formats import DEFAULT_FORMATS, FORMATS
from effnet.cli.argument_types import non_negative_int, positive_int
from effnet.cli.table import format_table, human_count


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def int_list():
    def parse(text: str) -> list[int]:
        try:
            values = [int(item) for item in comma_list(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive integers, got {text!r}"
            ) from None
        if not values or any(v < 1 for v in values):
            raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
        return values

    return parse


def _accuracy_cell(row: dict) -> str:
    if row.get("accuracy") is not None:
        return f"{100 * row['accuracy']:.1f}"
    return f"({row['top1_reference']:.1f})" if row.get("top1_reference") else "-"


def _cpu_cell(row: dict) -> str:
    """The CPU and its int8 features, short: numbers from different machines must not be compared blind."""
    from effnet.runtime.cpu import CpuInfo

    if row.get("cpu") is None:
        return "-"
    features = row.get("cpu_features")
    return CpuInfo(row["cpu"], None if features is None else tuple(features)).label


SIMULATED = "simulated"  # a row whose file has a size but no latency here (.rknn: the toolkit's simulator)


def bench_table(rows: list[dict]) -> str:
    """The rows as a text table; skipped rows say why, noisy ones are marked."""
    table = []
    for r in rows:
        size = f"{r['size_bytes'] / 1e6:.2f}" if r.get("size_bytes") else "-"
        if r.get("latency_ms_median") is None:
            timing = ["-", "-", "-"]
            reason = str(r.get("skipped"))
            note = reason if reason.startswith(SIMULATED) else f"skipped: {reason}"
        else:
            timing = [
                f"{r['latency_ms_median']:.2f}",
                f"{r['latency_ms_p10']:.2f}-{r['latency_ms_p90']:.2f}",
                f"{r['images_per_s']:.1f}",
            ]
            note = f"noisy (p90/median {r['spread']:.1f})" if r.get("noisy") else ""
        threads = r["threads"] if r.get("threads") is not None else r.get("device", "-")
        table.append(
            (
                r["model"],
                r["format"],
                threads,
                r["batch"],
                size,
                f"{r['params'] / 1e6:.2f}M",
                human_count(r["macs"]),
                *timing,
                _accuracy_cell(r),
                _cpu_cell(r),
                note,
            )
        )
    headers = (
        "model",
        "format",
        "threads",
        "batch",
        "size MB",
        "params",
        "MACs",
        "median ms",
        "p10-p90 ms",
        "images/s",
        "top-1",
        "cpu",
        "",
    )
    return format_table(headers, table, right=(2, 3, 4, 5, 6, 7, 8, 9, 10))


def cmd_bench(args: argparse.Namespace) -> int:
    from effnet.bench.core import check_formats

    check_formats(comma_list(args.formats))
    models = comma_list(args.models) if args.models else None
    if models is None and args.family is None and args.run is None:
        models = ["efficientnet_lite0"]
    if args.device == "cuda":
        return _cuda(args, models)
    from effnet.bench import run_bench

    rows = run_bench(
        models=models,
        formats=comma_list(args.formats),
        threads=args.threads,
        batch=args.batch[0] if args.batch else 1,
        resolution=args.resolution,
        runs=args.runs,
        warmup=args.warmup,
        family=args.family,
        run_dir=args.run,
        data_dir=args.data,
        workdir=args.workdir,
        pretrained=args.pretrained,
    )
    _report(args, rows)
    return 0


def _cuda(args: argparse.Namespace, models: list[str] | None) -> int:
    from effnet.bench.gpu import GPU_BATCHES, CudaUnavailable, run_gpu_bench

    formats = [f for f in comma_list(args.formats) if f in ("torch", "torch-compile")] or [
        "torch",
        "torch-compile",
    ]
    try:
        rows = run_gpu_bench(
            models=models,
            formats=formats,
            batches=args.batch or GPU_BATCHES,
            resolution=args.resolution,
            runs=args.runs,
            family=args.family,
        )
    except CudaUnavailable as error:
        print(f"effnet bench: {error}")
        return 0
    _report(args, rows)
    return 0


def _report(args: argparse.Namespace, rows: list[dict]) -> None:
    if args.plot:
        from effnet.bench import plot_accuracy_latency

        written = plot_accuracy_latency(rows, args.plot)
        print(f"plot: {', '.join(map(str, written))}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(bench_table(rows))
    noisy = sum(bool(r.get("noisy")) for r in rows)
    if noisy:
        print(
            f"\n{noisy} measurement(s) stayed noisy after repeats (p90/median > 1.5): other processes were "
            "using the CPU; re-run on a quiet machine"
        )
    measured = any(r.get("accuracy") is not None for r in rows)
    if not measured and any(r.get("top1_reference") for r in rows):
        print("top-1 in parentheses: reference ImageNet top-1 of the published weights, not measured here")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure size, params, MACs, latency (and accuracy) of models per format on this machine",
        description="Latency: median / p10 / p90 of --runs timed calls after --warmup calls; a measurement "
        "whose p90/median exceeds 1.5 is repeated (twice at most). Files are exported once into --workdir.",
    )
    p.add_argument("--models", help="comma-separated model names, e.g. lite0,mobilenet_v3_large_100")
    p.add_argument("--family", help="every model of this family (see `effnet models`)")
    p.add_argument("--run", help="a run folder written by `effnet train`: measure its model")
    p.add_argument("--data", help="with --run: an image folder of its classes; adds measured accuracy")
    p.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated, from {','.join(FORMATS)} (default: %(default)s)",
    )
    p.add_argument(
        "--threads", type=int_list(), default=[1], help="PyTorch / runtime threads, e.g. 1,2 (default: 1)"
    )
    p.add_argument(
        "--batch",
        type=int_list(),
        default=None,
        help="batch size (default: 1; with --device cuda a list, default: 1,32,256)",
    )
    p.add_argument("--resolution", type=positive_int, help="input size in pixels (default: each model's)")
    p.add_argument(
        "--runs",
        type=positive_int,
        default=50,
        help="timed calls per measurement (default: %(default)s)",
    )
    p.add_argument(
        "--warmup", type=non_negative_int, default=5, help="untimed calls first (default: %(default)s)"
    )
    p.add_argument(
        "--workdir", help="keep exported files here and reuse them next time (default: a temp dir)"
    )
    p.add_argument("--pretrained", action="store_true", help="load published weights (default: random)")
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: PyTorch on the GPU (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.add_argument("--plot", help="write an accuracy-vs-latency plot to this .png (and .svg)")
    p.set_defaults(func=cmd_bench)
