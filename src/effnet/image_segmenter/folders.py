"""Segmentation data from a path, as ``effnet train`` / ``effnet evaluate`` take it: a folder with
``images/`` and ``masks/`` (and optionally label_map.txt), or a set with ``train/`` and ``test/`` such folders
and a label map at its root (what ``effnet data segmentation`` writes)."""

from __future__ import annotations

import os
from pathlib import Path

from effnet.data.splits import split_data, split_validation


def is_segmentation_data(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with ``masks/`` (itself or in ``train/``)."""
    path = Path(path)
    return (path / "masks").is_dir() or (path / "train" / "masks").is_dir()


def _folder(folder: Path, root: Path):
    from effnet.data.segmentation import SegmentationData

    if not (folder / "images").is_dir():
        raise FileNotFoundError(f"{folder}: no images/ folder next to masks/; segmentation data needs both")
    label_map = next((p / "label_map.txt" for p in (root, folder) if (p / "label_map.txt").is_file()), None)
    return SegmentationData.from_folder(folder / "images", folder / "masks", label_map)


def load_segmentation_data(
    path: str | os.PathLike, val_split: float = 0.1, test_split: float = 0.1, seed: int = 0
):
    """(train, validation or None, test or None) from ``path``: a set keeps its ``test/`` part and takes
    ``val_split`` of ``train/`` for validation; a single folder is split (``test_split``, ``val_split``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder")
    if not is_segmentation_data(path):
        raise ValueError(
            f"{path}: not segmentation data; pass a folder with images/ and masks/ (index or VOC palette "
            "PNGs), or one with train/ and test/ such folders"
        )
    if (path / "train" / "masks").is_dir():
        train = _folder(path / "train", path)
        test = _folder(path / "test", path) if (path / "test" / "masks").is_dir() else None
        return split_validation(train, test, val_split, seed)
    return split_data(_folder(path, path), val_split, test_split, seed)


def load_evaluation_data(path: str | os.PathLike):
    """The data to evaluate on: a set's ``test/`` folder, or a whole images/ + masks/ folder."""
    path = Path(path)
    if (path / "test" / "masks").is_dir():
        return _folder(path / "test", path)
    if (path / "masks").is_dir():
        return _folder(path, path)
    raise ValueError(
        f"{path}: not segmentation data; pass a folder with images/ and masks/ (or test/ with them)"
    )
