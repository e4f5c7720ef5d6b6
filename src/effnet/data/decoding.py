"""Decoding a list of images (paths, PIL images, arrays, bytes) into batches, ahead of the model.

`ImageDataset.iter_batches` decodes a labelled dataset of files in worker processes; prediction gets any
list of images, which need not pickle, and only wants them in order. Threads do that: Pillow releases the
GIL while it decodes and resizes (and numpy while it normalizes), so a pool of threads decodes in parallel
without forking, and keeps decoding the next batch while the model runs on this one.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from effnet.data.images import ImageDecodeError, ImageSource


@dataclass
class DecodedBatch:
    """Up to ``batch_size`` consecutive images of the input: the decodable ones stacked in ``images``
    (float32 N x C x H x W, None when none decoded), their indexes in the input in ``positions``, and the
    (index, error) of those that could not be decoded."""

    positions: list[int] = field(default_factory=list)
    images: np.ndarray | None = None
    failures: list[tuple[int, ImageDecodeError]] = field(default_factory=list)


def decoding_threads() -> int:
    """One decoding thread per available CPU (sched_getaffinity respects container and taskset limits)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_batches(
    images: Sequence[ImageSource] | Iterable[ImageSource],
    transform: Callable[[ImageSource], np.ndarray],
    batch_size: int = 32,
    num_threads: int | None = None,
) -> Iterator[DecodedBatch]:
    """``transform(image)`` of every image, in input order, as `DecodedBatch` es of ``batch_size`` inputs.

    ``num_threads`` threads (None: one per CPU; 0 or 1: in this thread) decode up to two batches ahead of
    the consumer. An image that fails with `ImageDecodeError` is reported in its batch's ``failures``; any
    other exception propagates.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    items = list(images)
    threads = decoding_threads() if num_threads is None else num_threads
    if threads <= 1:
        for start in range(0, len(items), batch_size):
            chunk = range(start, min(start + batch_size, len(items)))
            yield _batch([(i, _decode(transform, items[i])) for i in chunk])
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="effnet-decode") as pool:
        ahead: deque[Future] = deque()
        submitted = 0

        def submit_up_to(limit: int) -> None:
            nonlocal submitted
            while submitted < min(limit, len(items)):
                ahead.append(pool.submit(_decode, transform, items[submitted]))
                submitted += 1

        try:
            for start in range(0, len(items), batch_size):
                submit_up_to(start + 3 * batch_size)  # this batch and two more in flight
                count = min(batch_size, len(items) - start)
                yield _batch([(start + i, ahead.popleft().result()) for i in range(count)])
        finally:  # the consumer stopped early (an error, break): drop what is still queued
            for future in ahead:
                future.cancel()


def _decode(transform: Callable, image: ImageSource) -> np.ndarray | ImageDecodeError:
    try:
        return np.asarray(transform(image), dtype=np.float32)
    except ImageDecodeError as error:
        return error


def _batch(decoded: list[tuple[int, np.ndarray | ImageDecodeError]]) -> DecodedBatch:
    batch = DecodedBatch()
    arrays = []
    for position, result in decoded:
        if isinstance(result, ImageDecodeError):
            batch.failures.append((position, result))
        else:
            batch.positions.append(position)
            arrays.append(result)
    batch.images = np.stack(arrays) if arrays else None
    return batch
