"""One data set into train / validation / test parts by fractions, for any data type with
``split(fraction, seed) -> (first, second)`` (image folders, detection and segmentation data, shards)."""

from __future__ import annotations

from typing import Any


def split_data(data: Any, val_split: float, test_split: float, seed: int) -> tuple[Any, Any, Any]:
    """(train, validation or None, test or None): ``test_split`` of ``data`` first, then ``val_split`` of
    the whole from the rest (each ``data.split`` is stratified where the data type stratifies)."""
    for name, value in (("--val-split", val_split), ("--test-split", test_split)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_split + test_split >= 0.9:
        raise ValueError(
            f"--val-split + --test-split = {val_split + test_split:.2f} leaves too little to train on"
        )
    train, validation, test = data, None, None
    if test_split > 0:
        train, test = train.split(1 - test_split, seed=seed)
    if val_split > 0:
        train, validation = train.split(1 - val_split / (1 - test_split), seed=seed + 1)
    return train, validation, test


def split_validation(train: Any, test: Any, val_split: float, seed: int) -> tuple[Any, Any, Any]:
    """(train, validation or None, test) of a set that comes with its own test part: ``val_split`` of
    ``train`` for validation."""
    validation = None
    if val_split > 0:
        train, validation = train.split(1 - val_split, seed=seed)
    return train, validation, test
