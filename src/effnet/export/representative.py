"""Representative images for calibration and for the exported file's self-check, from whatever the user has:
preprocessed arrays, an `ImageDataset`, or image paths."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from effnet.data.dataset import ImageDataset
from effnet.data.transforms import EvalTransform
from effnet.preprocessing import Preprocessing

log = logging.getLogger(__name__)

_ACCEPTED = (
    "preprocessed float32 arrays of shape (N, C, H, W) (or an iterable of them, or of (images, labels) "
    "pairs), an effnet ImageDataset, or a list of image paths"
)


def representative_arrays(
    data: Any, preprocessing: Preprocessing, limit: int, in_chans: int = 3
) -> np.ndarray:
    """Up to ``limit`` preprocessed images from ``data`` as one float32 (N, C, H, W) array (from a larger
    `ImageDataset`: ``limit`` images drawn with a fixed seed, so that every class is represented).

    Image files are decoded with the model's eval transform, in worker processes; unreadable ones are
    skipped with a warning. Arrays must already match the model input.
    """
    if data is None:
        raise ValueError(f"int8 quantization needs representative_data: {_ACCEPTED}")
    expected = (in_chans, *preprocessing.input_size)
    if isinstance(data, ImageDataset):
        if len(data) > limit:
            # a seeded draw over the whole dataset: a folder (or a split of one) lists its images class by
            # class, and its first `limit` images would calibrate on the first few classes only
            data = data.shuffled(seed=0)
        arrays = _decode(data.paths[:limit], preprocessing)
    elif isinstance(data, (str, os.PathLike)):
        raise TypeError(
            f"representative_data: got the single path {os.fspath(data)!r}; pass a list of image paths, or "
            "ImageDataset.from_folder(path) for a folder"
        )
    elif _is_path_list(data):
        arrays = _decode([os.fspath(p) for p in data[:limit]], preprocessing)
    else:
        arrays = _collect_arrays(data, limit, expected)
    if len(arrays) == 0:
        raise ValueError(f"representative_data: no usable image found; expected {_ACCEPTED}")
    if tuple(arrays.shape[1:]) != expected:
        raise ValueError(
            f"representative_data: images of shape {tuple(arrays.shape[1:])} do not match the model input "
            f"{expected}; preprocess them with effnet.data.transforms_for(model), or pass image paths or an "
            "ImageDataset"
        )
    return arrays


def _is_path_list(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, np.ndarray)
        and len(data) > 0
        and all(isinstance(item, (str, os.PathLike)) for item in data)
    )


def _decode(paths: list[str], preprocessing: Preprocessing) -> np.ndarray:
    dataset = ImageDataset.from_samples(paths, [0] * len(paths), ["image"])
    batches = [images for images, _ in dataset.iter_batches(EvalTransform(preprocessing), 64, progress=False)]
    if len(dataset.skipped):
        log.warning(
            "representative_data: %d of %d images could not be decoded", len(dataset.skipped), len(paths)
        )
    if not batches:
        return np.zeros((0, 3, *preprocessing.input_size), np.float32)
    return np.concatenate(batches)


def _collect_arrays(data: Any, limit: int, expected: tuple[int, ...]) -> np.ndarray:
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        items: Iterable[Any] = [data]
    elif isinstance(data, Iterable):
        items = data
    else:
        raise TypeError(f"representative_data: got {type(data).__name__}; expected {_ACCEPTED}")
    collected: list[np.ndarray] = []
    count = 0
    for item in items:
        if isinstance(item, (tuple, list)) and item and not isinstance(item[0], (int, float)):
            item = item[0]  # (images, labels), as ImageDataset.iter_batches and DataLoaders yield
        array = _to_numpy(item)
        if array.ndim == len(expected):
            array = array[None]
        if array.ndim != len(expected) + 1 or not np.issubdtype(array.dtype, np.floating):
            raise ValueError(
                f"representative_data: got an array of shape {array.shape} and dtype {array.dtype}; expected "
                f"preprocessed float32 images of shape (N, {', '.join(map(str, expected))})"
            )
        collected.append(array[: limit - count].astype(np.float32, copy=False))
        count += len(collected[-1])
        if count >= limit:
            break
    if not collected:
        return np.zeros((0, *expected), np.float32)
    return np.concatenate(collected)


def _to_numpy(item: Any) -> np.ndarray:
    if hasattr(item, "detach"):  # a torch tensor, possibly on a GPU
        item = item.detach().cpu().float().numpy()
    return np.asarray(item)
