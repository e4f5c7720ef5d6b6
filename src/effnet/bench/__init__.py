"""Measuring models on this machine: size, params, MACs, latency, throughput, accuracy; and the plot.

    from effnet.bench import cpu_info, plot_accuracy_latency, run_bench
    rows = run_bench(models=["efficientnet_lite0", "mobilenet_v3_large_100"], formats=["onnx", "onnx-int8"],
                     threads=[1, 2], runs=50)
    plot_accuracy_latency(rows, "bench.png")   # and bench.svg
    cpu_info().label                          # 'AMD EPYC [avx2 avx512 avx512_vnni]': named by every row

`effnet bench` and `effnet profile` are thin shells over these calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "DEFAULT_FORMATS": "effnet.bench.formats",
    "BenchModel": "effnet.bench.core",
    "resolve_models": "effnet.bench.core",
    "run_bench": "effnet.bench.core",
    "NOISE_RATIO": "effnet.bench.latency",
    "Timing": "effnet.bench.latency",
    "measure": "effnet.bench.latency",
    "percentiles": "effnet.bench.latency",
    "time_calls": "effnet.bench.latency",
    "FORMATS": "effnet.bench.formats",
    "FormatSkipped": "effnet.bench.runners",
    "CpuInfo": "effnet.runtime.cpu",
    "cpu_info": "effnet.runtime.cpu",
    "plot_accuracy_latency": "effnet.bench.plot",
}

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

if TYPE_CHECKING:
    from effnet.bench.core import BenchModel, resolve_models, run_bench
    from effnet.bench.formats import DEFAULT_FORMATS, FORMATS
    from effnet.bench.latency import NOISE_RATIO, Timing, measure, percentiles, time_calls
    from effnet.bench.plot import plot_accuracy_latency
    from effnet.bench.runners import FormatSkipped
    from effnet.runtime.cpu import CpuInfo, cpu_info

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
