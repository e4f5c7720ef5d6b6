"""Verification pairs: read from an LFW-style ``pairs.txt`` or a CSV file, or sampled from a dataset of
held-out identities. A `Pairs` holds the image paths once and index pairs into them."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effnet.data.dataset import ImageDataset

_CSV_COLUMNS = "path1,path2,same (1 for the same identity, 0 for different)"


@dataclass(frozen=True)
class Pairs:
    """``paths``: every image once; ``pairs``: (N, 2) indexes into ``paths``; ``same``: (N,) bool."""

    paths: list[str]
    pairs: np.ndarray
    same: np.ndarray

    def __len__(self) -> int:
        return len(self.pairs)

    @classmethod
    def from_path_pairs(cls, rows: list[tuple[str, str, bool]]) -> Pairs:
        index: dict[str, int] = {}
        pairs = [(index.setdefault(a, len(index)), index.setdefault(b, len(index))) for a, b, _ in rows]
        return cls(
            list(index), np.asarray(pairs, dtype=np.int64).reshape(-1, 2), np.array([s for *_, s in rows])
        )


def read_lfw_pairs(pairs_file: str | os.PathLike, images_root: str | os.PathLike | None = None) -> Pairs:
    """LFW's ``pairs.txt``: an optional header (``10 300``: folds x pairs per fold, or just a count), then one
    pair per line, either ``name n1 n2`` (two images of one person) or ``name1 n1 name2 n2`` (two people).
    Image ``n`` of ``name`` is ``images_root/name/name_{n:04d}.<ext>`` (jpg, png ...); ``images_root``
    defaults to the folder holding ``pairs.txt``."""
    pairs_file = Path(pairs_file)
    if not pairs_file.is_file():
        raise FileNotFoundError(f"{pairs_file}: pairs file not found")
    root = Path(images_root) if images_root is not None else pairs_file.parent
    rows: list[tuple[str, str, bool]] = []
    for number, line in enumerate(pairs_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or (number == 1 and all(p.isdigit() for p in parts)):
            continue  # blank line, or the "folds pairs" header
        try:
            if len(parts) == 3:
                rows.append(
                    (_lfw_image(root, parts[0], parts[1]), _lfw_image(root, parts[0], parts[2]), True)
                )
            elif len(parts) == 4:
                rows.append(
                    (_lfw_image(root, parts[0], parts[1]), _lfw_image(root, parts[2], parts[3]), False)
                )
            else:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{pairs_file}:{number}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {line.strip()!r}"
            ) from None
    if not rows:
        raise ValueError(f"{pairs_file}: no pairs found")
    return Pairs.from_path_pairs(rows)


def _lfw_image(root: Path, name: str, number: str) -> str:
    stem = f"{name}_{int(number):04d}"
    folder = root / name
    for extension in (".jpg", ".png", ".jpeg", ".bmp", ".webp"):
        if (folder / (stem + extension)).exists():
            return str(folder / (stem + extension))
    return str(folder / (stem + ".jpg"))  # a missing file is reported when decoded, with its path


def read_csv_pairs(csv_file: str | os.PathLike, images_root: str | os.PathLike | None = None) -> Pairs:
    """A CSV with a header naming the columns ``path1,path2,same`` (``label`` or ``is_same`` work for
    ``same``); relative paths are resolved against ``images_root`` (default: the CSV's folder)."""
    csv_file = Path(csv_file)
    if not csv_file.is_file():
        raise FileNotFoundError(f"{csv_file}: pairs CSV not found")
    root = Path(images_root) if images_root is not None else csv_file.parent
    with open(csv_file, newline="") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        same_key = next((k for k in ("same", "label", "is_same", "issame") if k in fields), None)
        if "path1" not in fields or "path2" not in fields or same_key is None:
            raise ValueError(f"{csv_file}: expected the columns {_CSV_COLUMNS}, got {fields}")
        rows = []
        for number, raw in enumerate(reader, 2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            flag = row[same_key].lower()
            if flag not in ("0", "1", "true", "false"):
                raise ValueError(f"{csv_file}:{number}: {same_key} must be 0/1 or true/false, got {flag!r}")
            rows.append((str(root / row["path1"]), str(root / row["path2"]), flag in ("1", "true")))
    if not rows:
        raise ValueError(f"{csv_file}: no pairs found")
    return Pairs.from_path_pairs(rows)


def sample_pairs(dataset: ImageDataset, num_pairs: int | None = None, seed: int = 0) -> Pairs:
    """Balanced pairs from a dataset of identities: half genuine (two images of one identity, identities
    drawn uniformly), half impostor (two identities), without repeats, in a seeded random order.

    ``num_pairs`` (default: as many as the images, at most 6000 as LFW) is split evenly; it is capped by the
    distinct pairs available.
    """
    labels = np.asarray(dataset.labels)
    identities = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    usable = [m for m in identities if len(m) >= 2]
    if not usable or len(identities) < 2:
        raise ValueError(
            f"sampling verification pairs needs at least 2 identities and one with 2+ images; {dataset!r} "
            "has "
            f"{len(identities)} identities"
        )
    wanted = min(len(labels), 6000) if num_pairs is None else int(num_pairs)
    if wanted < 2:
        raise ValueError(f"num_pairs must be >= 2, got {num_pairs}")
    rng = np.random.default_rng(seed)
    genuine_available = sum(len(m) * (len(m) - 1) // 2 for m in usable)
    impostor_available = (len(labels) ** 2 - sum(len(m) ** 2 for m in identities)) // 2
    half = min(wanted // 2, genuine_available, impostor_available)
    genuine, impostor = set(), set()
    while len(genuine) < half:
        members = usable[rng.integers(len(usable))]
        a, b = rng.choice(members, 2, replace=False)
        genuine.add((min(a, b), max(a, b)))
    while len(impostor) < half:
        a, b = rng.integers(len(labels), size=2)
        if labels[a] != labels[b]:
            impostor.add((min(a, b), max(a, b)))
    pairs = np.array(sorted(genuine) + sorted(impostor), dtype=np.int64)
    same = np.array([True] * len(genuine) + [False] * len(impostor))
    order = rng.permutation(len(pairs))
    return Pairs(list(dataset.paths), pairs[order], same[order])
