"""PyTorch latency and throughput on a CUDA GPU: eager and compiled, batches 1 / 32 / 256, CUDA events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from effnet.bench.core import LATENCY_KEYS
from effnet.bench.latency import NOISE_RATIO, measure
from effnet.profiling import count_params, profile
from effnet.runtime.cpu import cpu_info

GPU_BATCHES = (1, 32, 256)
GPU_FORMATS = ("torch", "torch-compile")


class CudaUnavailable(RuntimeError):
    """No CUDA device: the GPU benchmark cannot run here (not an error of the user's input)."""


def cuda_event_timer() -> Callable[[Callable[[], object]], float]:
    """Milliseconds of one call measured on the GPU's own clock (CUDA events), not the host's."""

    def time_one(call: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    return time_one


def run_gpu_bench(
    models: Sequence[str] | None = None,
    formats: Sequence[str] = GPU_FORMATS,
    batches: Sequence[int] = GPU_BATCHES,
    resolution: int | None = None,
    runs: int = 50,
    warmup: int = 10,
    family: str | None = None,
    half: bool = False,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Eager and ``torch.compile`` latency / throughput of each model on ``cuda:0`` at each batch size.

    Rows have the `run_bench` keys (``threads`` is None, ``format`` is ``torch`` or ``torch-compile``,
    ``device`` is the GPU's name, ``cpu`` / ``cpu_features`` the host's, ``size_bytes`` the float32
    weights). Raises `CudaUnavailable` without a GPU.
    """
    from tqdm.auto import tqdm

    from effnet.bench.core import resolve_models

    if not torch.cuda.is_available():
        raise CudaUnavailable(
            "no CUDA device here (torch.cuda.is_available() is False); GPU benchmark skipped"
        )
    for name in formats:
        if name not in GPU_FORMATS:
            raise ValueError(f"--formats: {name!r} does not run on --device cuda; choose from {GPU_FORMATS}")
    device = torch.device("cuda", 0)
    gpu_name = torch.cuda.get_device_name(device)
    dtype = torch.float16 if half else torch.float32
    rows = []
    bench_models = resolve_models(models, family, None, resolution)
    bar = tqdm(total=len(bench_models) * len(formats) * len(batches), unit="row", disable=progress is False)
    for model in bench_models:
        network = model.network
        height, width = network.preprocessing.input_size
        base = {
            "model": model.name,
            "family": model.family,
            "resolution": height,
            "params": count_params(network),
            "macs": profile(network).macs,
            "size_bytes": sum(p.numel() * 4 for p in network.parameters()),
            "top1_reference": model.top1_reference,
            "device": gpu_name,
            **cpu_info().to_dict(),  # the host, which feeds the GPU
            "threads": None,
            "accuracy": None,
            **dict.fromkeys(LATENCY_KEYS),
        }
        network = network.to(device, dtype).eval()
        for file_format in formats:
            runnable = network
            skipped = None
            if file_format == "torch-compile":
                try:
                    runnable = torch.compile(network)
                except Exception as error:  # backend errors have many types
                    skipped = f"torch.compile unavailable: {type(error).__name__}: {error}"
            for batch in batches:
                bar.set_description(f"{model.name} {file_format} batch {batch}")
                row = {**base, "format": file_format, "batch": batch, "skipped": skipped}
                if skipped is None:
                    inputs = torch.randn(batch, 3, height, width, device=device, dtype=dtype)

                    def call(net=runnable, x=inputs):
                        with torch.inference_mode():
                            return net(x)

                    try:
                        timing = measure(
                            call, runs, warmup, noise_ratio=NOISE_RATIO, time_one=cuda_event_timer()
                        )
                    except Exception as error:  # out of memory at batch 256, compile failures
                        row["skipped"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                        torch.cuda.empty_cache()
                    else:
                        row.update(
                            latency_ms_median=round(timing.median_ms, 4),
                            latency_ms_p10=round(timing.p10_ms, 4),
                            latency_ms_p90=round(timing.p90_ms, 4),
                            images_per_s=round(batch * 1000.0 / timing.median_ms, 1),
                            spread=round(timing.spread, 3),
                            attempts=timing.attempts,
                            noisy=timing.noisy,
                        )
                rows.append(row)
                bar.update(1)
        network.to("cpu")
        torch.cuda.empty_cache()
    bar.close()
    return rows
