"""The timing loop: warm-up, timed runs, percentiles, and a repeat when the machine was too noisy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

NOISE_RATIO = 1.5  # p90 / median above this: another process disturbed the runs, measure again
MAX_ATTEMPTS = 3  # the first measurement and up to two repeats


@dataclass(frozen=True)
class Timing:
    """Milliseconds per call: median, 10th and 90th percentile of ``runs`` timed calls after warm-up.

    ``attempts``: how many times the whole measurement ran (repeats happen when p90 / median > the noise
    ratio; the least noisy attempt is kept). ``noisy``: even the kept attempt is above the ratio.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    attempts: int = 1
    noisy: bool = False
    samples_ms: list[float] = field(default_factory=list, repr=False, compare=False)

    @property
    def spread(self) -> float:
        """p90 / median: 1.0 on a quiet machine."""
        return self.p90_ms / self.median_ms if self.median_ms > 0 else float("inf")


def percentiles(samples_ms: list[float]) -> tuple[float, float, float]:
    """(median, p10, p90) of the samples."""
    values = np.asarray(samples_ms, dtype=np.float64)
    return float(np.median(values)), float(np.percentile(values, 10)), float(np.percentile(values, 90))


def time_calls(
    call: Callable[[], object],
    runs: int = 50,
    warmup: int = 5,
    timer: Callable[[], float] = time.perf_counter,
    time_one: Callable[[Callable[[], object]], float] | None = None,
) -> list[float]:
    """Milliseconds of each of ``runs`` calls, after ``warmup`` untimed calls.

    ``timer``: a clock in seconds (wall time by default). ``time_one``: instead of the clock, a function that
    runs one call and returns its milliseconds (CUDA events: see `effnet.bench.gpu`)."""
    if runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs}")
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        if time_one is not None:
            samples.append(float(time_one(call)))
            continue
        start = timer()
        call()
        samples.append((timer() - start) * 1000.0)
    return samples


def measure(
    call: Callable[[], object],
    runs: int = 50,
    warmup: int = 5,
    timer: Callable[[], float] = time.perf_counter,
    noise_ratio: float = NOISE_RATIO,
    max_attempts: int = MAX_ATTEMPTS,
    time_one: Callable[[Callable[[], object]], float] | None = None,
) -> Timing:
    """Time ``call``; when p90 / median is above ``noise_ratio`` measure again (up to ``max_attempts`` in all)
    and keep the attempt with the smallest spread. The warm-up runs before the first attempt only."""
    best: Timing | None = None
    for attempt in range(1, max_attempts + 1):
        samples = time_calls(call, runs, warmup if attempt == 1 else 0, timer, time_one)
        median, p10, p90 = percentiles(samples)
        timing = Timing(median, p10, p90, runs, attempt, False, samples)
        if best is None or timing.spread < best.spread:
            best = timing
        if timing.spread <= noise_ratio:
            break
    assert best is not None
    return Timing(
        best.median_ms,
        best.p10_ms,
        best.p90_ms,
        runs,
        attempts=attempt,
        noisy=best.spread > noise_ratio,
        samples_ms=best.samples_ms,
    )
