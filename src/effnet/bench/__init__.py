"""Measuring models on this machine: size, params, MACs, latency, throughput, accuracy; and the plot.

    from effnet.bench import cpu_info, plot_accuracy_latency, run_bench
    rows = run_bench(models=["efficientnet_lite0", "mobilenet_v3_large_100"], formats=["onnx", "onnx-int8"],
                     threads=[1, 2], runs=50)
    plot_accuracy_latency(rows, "bench.png")   # and bench.svg
    cpu_info().label                          # 'AMD EPYC [avx2 avx512 avx512_vnni]': named by every row

`effnet bench` and `effnet profile` are thin shells over these calls.
"""

from effnet.bench.core import DEFAULT_FORMATS, BenchModel, resolve_models, run_bench
from effnet.bench.latency import NOISE_RATIO, Timing, measure, percentiles, time_calls
from effnet.bench.runners import FORMATS, FormatSkipped
from effnet.runtime.cpu import CpuInfo, cpu_info

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "NOISE_RATIO",
    "BenchModel",
    "CpuInfo",
    "FormatSkipped",
    "Timing",
    "cpu_info",
    "measure",
    "percentiles",
    "plot_accuracy_latency",
    "resolve_models",
    "run_bench",
    "time_calls",
]


def __getattr__(name: str):
    # matplotlib is imported only when a plot is asked for
    if name == "plot_accuracy_latency":
        from effnet.bench.plot import plot_accuracy_latency

        return plot_accuracy_latency
    raise AttributeError(f"module 'effnet.bench' has no attribute {name!r}")
