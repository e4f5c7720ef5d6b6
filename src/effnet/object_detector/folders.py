"""Detection data from a path, as ``effnet train`` / ``effnet evaluate`` take it: a Model Maker CSV file, a
Pascal VOC folder (``images/``, ``annotations/``, a label map), or a set with ``train/`` and ``test/`` VOC
folders and a label map at its root (what ``effnet data detection`` writes)."""

from __future__ import annotations

import os
from pathlib import Path

from effnet.data.splits import split_data, split_validation

LABEL_MAPS = ("label_map.txt", "label_map.json", "label_map.yaml", "label_map.yml", "label_map.pbtxt")


def _label_map(folder: Path, *more: Path) -> Path | None:
    for place in (folder, *more):
        for name in LABEL_MAPS:
            if (place / name).is_file():
                return place / name
    return None


def is_detection_data(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like detection data: a .csv file, or a folder with ``annotations/`` (itself
    or in ``train/``)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".csv"
    return (path / "annotations").is_dir() or (path / "train" / "annotations").is_dir()


def _voc(folder: Path, label_map: Path | None, root: Path):
    from effnet.data.detection import DetectionData

    if label_map is None:
        raise FileNotFoundError(
            f"{root}: no label map; put label_map.txt (one class name per line, in label order) next to "
            "annotations/"
        )
    if not (folder / "images").is_dir():
        raise FileNotFoundError(
            f"{folder}: no images/ folder next to annotations/; the VOC layout needs both"
        )
    return DetectionData.from_pascal_voc(folder / "images", folder / "annotations", label_map)


def load_detection_data(
    path: str | os.PathLike, val_split: float = 0.1, test_split: float = 0.1, seed: int = 0
):
    """(train, validation or None, test or None) from ``path`` (see the module docstring).

    A CSV file keeps its own TRAINING / VALIDATION / TEST parts. A set with ``train/`` and ``test/`` keeps its
    test part and takes ``val_split`` of ``train/`` for validation. A single VOC folder is split:
    ``test_split`` for test, ``val_split`` for validation."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not is_detection_data(path):
        raise ValueError(
            f"{path}: not detection data; pass a Model Maker CSV file, a Pascal VOC folder (images/, "
            "annotations/, label_map.txt) or a folder with train/ and test/ VOC folders"
        )
    if path.is_file():
        from effnet.data.detection import DetectionData

        train, validation, test = DetectionData.from_csv(path)
        return train, (validation if len(validation) else None), (test if len(test) else None)
    if (path / "train" / "annotations").is_dir():
        train = _voc(path / "train", _label_map(path, path / "train"), path)
        test = None
        if (path / "test" / "annotations").is_dir():
            test = _voc(path / "test", _label_map(path, path / "test"), path)
        return split_validation(train, test if test is not None and len(test) else None, val_split, seed)
    return split_data(_voc(path, _label_map(path), path), val_split, test_split, seed)


def load_evaluation_data(path: str | os.PathLike):
    """The data to evaluate on: a CSV file's TEST part, a set's ``test/`` folder, or a whole VOC folder."""
    path = Path(path)
    if path.is_dir() and (path / "test" / "annotations").is_dir():
        return _voc(path / "test", _label_map(path, path / "test"), path)
    if path.is_dir() and (path / "annotations").is_dir():
        return _voc(path, _label_map(path), path)
    train, validation, test = load_detection_data(path, 0.0, 0.0)
    return test or validation or train
