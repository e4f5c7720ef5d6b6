"""Image-classification datasets: (file, label) pairs read from a folder tree or a CSV, decoded lazily.

`ImageDataset` is the Model Maker ``DataLoader``: ``ImageDataset.from_folder("flowers").split(0.8)``.
It never holds decoded pixels: `ImageDataset.iter_batches` decodes and transforms in worker processes, a
bounded number of chunks ahead, so a 100k-image folder costs memory for its file names only. Files that
cannot be decoded are skipped, kept in `ImageDataset.skipped` and reported once; `ImageDataset.verify`
finds them all up front.

numpy, Pillow and tqdm only (no torch), like the transforms, so the runtime can use it too.
"""

from __future__ import annotations

import copy
import csv
import itertools
import logging
import multiprocessing
import os
import pickle
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from effnet.data.images import IMAGE_EXTENSIONS, ImageDecodeError, load_image
from effnet.data.listing import SkippedEntry, list_class_folders, list_images

logger = logging.getLogger(__name__)

Transform = Callable[[str], np.ndarray]

_CHUNK_SIZE = 16  # images per worker task: amortizes inter-process overhead, keeps prefetch memory small
_VERIFY_CHUNK_SIZE = 64
_VERIFY_SIZE = (224, 224)  # verify decodes as a 224-pixel eval transform would (JPEG draft keeps it fast)
_SHOWN = 5  # skipped files listed by name in a log message
# A file whose decode + transform takes longer than this is named in one message after the pass: the user
# can downscale it once instead of paying for it in every run.
SLOW_DECODE_SECONDS = 1.0
_LAYOUT = "<folder>/<label>/<image>.jpg"


class SkippedImage(NamedTuple):
    """A file left out because it could not be decoded: its path and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: cannot decode ({self.reason}); skipped"


@dataclass(frozen=True)
class VerifyReport:
    """What `ImageDataset.verify` found: how many files it decoded and which ones it dropped."""

    checked: int
    skipped: tuple[SkippedImage, ...]

    @property
    def readable(self) -> int:
        return self.checked - len(self.skipped)

    def __str__(self) -> str:
        lines = [f"verified {self.checked} images: {self.readable} readable, {len(self.skipped)} dropped"]
        return "\n  ".join(lines + [str(s) for s in self.skipped])


class ImageDataset:
    """Image files with one class label each, plus the class names (``index_to_label``).

    Build one with `from_folder`, `from_csv` or `from_samples`; divide it with `split`; feed a model with
    `iter_batches` or `load_arrays`. Also available as ``effnet.image_classifier.DataLoader``.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels: Sequence[int] | np.ndarray,
        index_to_label: Sequence[str],
    ) -> None:
        names = [str(name) for name in index_to_label]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"index_to_label must be non-empty, unique class names; got {names!r}")
        label_array = np.asarray(labels)
        if label_array.ndim != 1 or len(label_array) != len(paths):
            raise ValueError(
                f"labels must be one integer per path: got {len(paths)} paths and labels of shape "
                f"{label_array.shape}"
            )
        if label_array.size and (
            not np.issubdtype(label_array.dtype, np.integer)
            or label_array.min() < 0
            or label_array.max() >= len(names)
        ):
            raise ValueError(
                f"labels must be integers in 0..{len(names) - 1} (indices into index_to_label), got values "
                f"{np.unique(label_array)[:10].tolist()}"
            )
        self._paths = [os.fspath(path) for path in paths]
        self._labels = label_array.astype(np.int64)
        self._index_to_label = names
        self._skipped: list[SkippedImage] = []
        self._left_out: list[SkippedEntry] = []

    @classmethod
    def from_samples(
        cls,
        paths: Sequence[str | os.PathLike],
        labels: Sequence[int] | np.ndarray,
        index_to_label: Sequence[str],
    ) -> ImageDataset:
        """A dataset of ``paths`` with integer ``labels`` indexing into ``index_to_label``, in this order."""
        return cls(paths, labels, index_to_label)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, shuffle: bool = True, seed: int = 0) -> ImageDataset:
        """Images in ``path/<label>/...``: one top-level sub-folder per class, labels in sorted name order.

        Images in nested sub-folders belong to their top-level folder. Only regular files with an image
        extension (`IMAGE_EXTENSIONS`, any letter case) count; names starting with '.' are skipped. Entries
        that cannot be read (broken symlinks, symlink loops, FIFOs, folders without permission) are left out
        and named in one warning. Files are listed, not opened: unreadable ones are found when decoded (or by
        `verify`). ``shuffle`` orders the samples
        by a permutation drawn from ``seed``; otherwise they are grouped by class, sorted by path.
        """
        root = os.fspath(path)
        if not os.path.exists(root):
            raise FileNotFoundError(
                f"{root}: folder not found; expected a folder with one sub-folder of images per class "
                f"({_LAYOUT}); check the path"
            )
        if not os.path.isdir(root):
            raise NotADirectoryError(
                f"{root}: is a file, expected a folder with one sub-folder of images per class ({_LAYOUT}); "
                "pass the folder that holds the class folders"
            )
        names, loose, skipped = list_class_folders(root)
        if len(names) < 2:
            found = f"{len(names)} class folder" + ("" if len(names) == 1 else "s")
            found += f" ({names[0]!r})" if names else ""
            if loose:
                found += f" and {loose} image files directly inside it, which are ignored"
            raise ValueError(
                f"{root}: found {found}; image classification needs at least 2 classes, and each class "
                f"needs its own sub-folder of images ({_LAYOUT})"
            )
        paths: list[str] = []
        labels: list[int] = []
        empty: list[str] = []
        for index, name in enumerate(names):
            listing = list_images(os.path.join(root, name))
            skipped.extend(listing.skipped)
            if not listing.images:
                found = f"{listing.others} files, none" if listing.others else "nothing"
                empty.append(f"{os.path.join(root, name)} ({found} with an image extension)")
            paths.extend(listing.images)
            labels.extend([index] * len(listing.images))
        if skipped:
            logger.warning(
                "%s: left out %d entries that cannot be read as image files:\n  %s",
                root,
                len(skipped),
                "\n  ".join(map(str, skipped)),
            )
        if empty:
            raise ValueError(
                "class folders without images: "
                + "; ".join(empty)
                + f". Expected files ending in {', '.join(sorted(IMAGE_EXTENSIONS))}; add images to these "
                "folders or remove them"
            )
        dataset = cls(paths, labels, names)
        logger.info("%s: %d images in %d classes", root, len(dataset), len(names))
        dataset = dataset.shuffled(seed) if shuffle else dataset
        dataset._left_out = sorted(skipped)
        return dataset

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        image_column: str = "path",
        label_column: str = "label",
        root: str | os.PathLike | None = None,
    ) -> ImageDataset:
        """Images listed in a CSV file with a header row, in file order.

        Relative paths are resolved against ``root``, or against the CSV file's folder when ``root`` is None.
        Labels are sorted by name, or by value when every label is an integer. Listed files that do not exist
        are skipped and reported like unreadable ones (see `skipped`).
        """
        csv_path = os.fspath(path)
        if not os.path.isfile(csv_path):
            raise FileNotFoundError(f"{csv_path}: CSV file not found; check the path")
        base = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(csv_path))
        rows: list[tuple[str, str]] = []
        with open(csv_path, newline="", encoding="utf-8-sig") as file:  # -sig: Excel writes a BOM
            reader = csv.DictReader(file)
            columns = list(reader.fieldnames or [])
            missing = [name for name in (image_column, label_column) if name not in columns]
            if missing:
                raise ValueError(
                    f"{csv_path}: no column {' or '.join(map(repr, missing))}; found columns {columns}; pass "
                    "image_column= and label_column= naming the columns with the image path and the label"
                )
            for row in reader:
                image, label = (row.get(image_column) or "").strip(), (row.get(label_column) or "").strip()
                if not image or not label:
                    column = image_column if not image else label_column
                    raise ValueError(
                        f"{csv_path}, line {reader.line_num}: empty {column!r}; every row needs an image "
                        "path and a label"
                    )
                rows.append((os.path.join(base, image), label))
        names = _sorted_labels({label for _, label in rows})
        if len(names) < 2:
            raise ValueError(
                f"{csv_path}: found {len(names)} distinct label(s) {names} in column {label_column!r}; image "
                "classification needs at least 2 classes"
            )
        exists = [os.path.isfile(file) for file, _ in rows]
        present = {label for (_, label), ok in zip(rows, exists, strict=True) if ok}
        absent = [name for name in names if name not in present]
        if absent:
            raise ValueError(
                f"{csv_path}: no listed file exists for class(es) {absent}; check the paths in column "
                f"{image_column!r} (relative ones are resolved against {base})"
            )
        position = {name: index for index, name in enumerate(names)}
        kept = [(file, position[label]) for (file, label), ok in zip(rows, exists, strict=True) if ok]
        dataset = cls([file for file, _ in kept], [label for _, label in kept], names)
        missing_files = [
            SkippedImage(file, "file not found") for (file, _), ok in zip(rows, exists, strict=True) if not ok
        ]
        dataset._record_skipped(missing_files, len(rows), f"check the paths in {csv_path}")
        return dataset

    # -- views --------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self._paths[index], int(self._labels[index])

    @property
    def size(self) -> int:
        """Number of images (Model Maker's name for ``len``)."""
        return len(self._paths)

    @property
    def num_classes(self) -> int:
        return len(self._index_to_label)

    @property
    def index_to_label(self) -> list[str]:
        """Class names; label ``i`` is ``index_to_label[i]``."""
        return list(self._index_to_label)

    @property
    def label_names(self) -> list[str]:
        """Class names (MediaPipe Model Maker's name for `index_to_label`)."""
        return list(self._index_to_label)

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    @property
    def labels(self) -> np.ndarray:
        """Label index per image, int64."""
        return self._labels.copy()

    @property
    def skipped(self) -> list[SkippedImage]:
        """Files found unreadable so far (when decoded, by `verify`, or missing from a CSV), oldest first."""
        return list(self._skipped)

    @property
    def left_out(self) -> list[SkippedEntry]:
        """Entries of the folder that `from_folder` did not list (broken symlinks, FIFOs ...), with why.
        Not carried into `split` parts, which hold listed files only."""
        return list(self._left_out)

    def class_counts(self) -> dict[str, int]:
        """Images per class, in label order (classes without images included, with 0)."""
        counts = np.bincount(self._labels, minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self._index_to_label, counts, strict=True)}

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self._index_to_label[:5])) + (", ..." if self.num_classes > 5 else "")
        skipped = f", skipped={len(self._skipped)}" if self._skipped else ""
        return f"ImageDataset(size={len(self)}, num_classes={self.num_classes}, labels=[{shown}]{skipped})"

    # -- reordering and splitting -------------------------------------------------------------------------

    def shuffled(self, seed: int = 0) -> ImageDataset:
        """A copy in an order drawn from ``seed`` (the same seed gives the same order)."""
        return self._subset(np.random.default_rng(seed).permutation(len(self)))

    def split(self, fraction: float, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """(first, rest): ``fraction`` of each class's images in ``first``, the others in ``rest``.

        Stratified and reproducible: each class's images are drawn with ``seed``, and its share is rounded to
        the nearest image. A class with one image goes to ``first``; a class with two or more images keeps at
        least one in each part. Both parts keep this dataset's order and its full ``index_to_label``.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(
                f"split: fraction must be between 0 and 1, exclusive, got {fraction!r}; e.g. 0.8 puts 80% of "
                "each class in the first part"
            )
        rng = np.random.default_rng(seed)
        by_class = np.argsort(self._labels, kind="stable")
        bounds = np.cumsum(np.bincount(self._labels, minlength=self.num_classes))[:-1]
        in_first = np.zeros(len(self), dtype=bool)
        for members in np.split(by_class, bounds):
            count = len(members)
            if count == 0:
                continue
            take = 1 if count == 1 else min(max(int(np.floor(fraction * count + 0.5)), 1), count - 1)
            in_first[rng.permutation(members)[:take]] = True
        return self._subset(np.flatnonzero(in_first)), self._subset(np.flatnonzero(~in_first))

    def _subset(self, indices: np.ndarray) -> ImageDataset:
        subset = type(self)([self._paths[i] for i in indices], self._labels[indices], self._index_to_label)
        if self._skipped:
            members = set(subset._paths)
            subset._skipped = [s for s in self._skipped if s.path in members]
        return subset

    # -- decoding -----------------------------------------------------------------------------------------

    def iter_batches(
        self,
        transform: Transform,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        num_workers: int | None = None,
        drop_last: bool = False,
        progress: bool | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images, labels)``: float32 (N, C, H, W) from ``transform(path)``, and int64 (N,).

        Decoding runs in ``num_workers`` processes (None: one per available CPU; 0: in this process), a few
        chunks ahead of the consumer, in order. ``transform`` must be picklable (`EvalTransform` and
        `TrainTransform` are; a lambda is not). ``shuffle`` draws the order from ``seed``: pass a new seed
        each epoch. Files that fail to decode are left out of their batch (a batch may come out short; one
        with nothing readable is not yielded), recorded in `skipped` and reported once. They are tried again
        on each call, so batches depend only on the arguments, never on earlier calls; `verify` drops them.

        A transform whose ``rng`` attribute is a numpy Generator (like `TrainTransform`) gets a fresh
        generator per chunk, seeded from its own: augmentation is reproducible, differs between images, and
        does not depend on ``num_workers``. ``progress``: a tqdm bar; None shows it on a terminal only.
        """
        if not callable(transform):
            raise TypeError(f"iter_batches: transform must be callable (path -> array), got {transform!r}")
        _check_count("batch_size", batch_size, minimum=1)
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        if drop_last:
            order = order[: len(order) // batch_size * batch_size]
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        chunks = [
            (batch_number, batch[start : start + _CHUNK_SIZE])
            for batch_number, batch in enumerate(batches)
            for start in range(0, len(batch), _CHUNK_SIZE)
        ]
        workers = _resolve_workers(num_workers, len(chunks))
        if workers:
            _check_picklable(transform)
        return self._decode_batches(transform, chunks, workers, progress)

    def _decode_batches(
        self,
        transform: Transform,
        chunks: list[tuple[int, np.ndarray]],
        workers: int,
        progress: bool | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = getattr(transform, "rng", None)
        seeds: list[int | None] = [None] * len(chunks)
        if isinstance(rng, np.random.Generator):
            seeds = rng.integers(0, 2**63, size=len(chunks)).tolist()
        tasks = [
            (transform, [self._paths[i] for i in indices], chunk_seed)
            for (_, indices), chunk_seed in zip(chunks, seeds, strict=True)
        ]
        chunk_labels = [self._labels[indices] for _, indices in chunks]  # taken now: verify() may change them
        total = sum(len(indices) for _, indices in chunks)
        failures: list[SkippedImage] = []
        slow: list[tuple[str, float]] = []
        images: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        bar = tqdm(
            total=total, unit="img", desc="decoding", disable=None if progress is None else not progress
        )
        try:
            results = _ordered_results(_decode_chunk, tasks, workers)
            for position, ((batch_number, indices), result) in enumerate(zip(chunks, results, strict=True)):
                chunk_images, decoded, chunk_failures, chunk_slow = result
                failures.extend(chunk_failures)
                slow.extend(chunk_slow)
                if chunk_images is not None:
                    images.append(chunk_images)
                    labels.append(chunk_labels[position][decoded])
                bar.update(len(indices))
                last_of_batch = position + 1 == len(chunks) or chunks[position + 1][0] != batch_number
                if last_of_batch and images:
                    yield np.concatenate(images), np.concatenate(labels)
                if last_of_batch:
                    images, labels = [], []
        finally:
            bar.close()
            self._record_skipped(failures, total, "call dataset.verify() to find and drop them all up front")
            _report_slow(slow, total)

    def load_arrays(
        self, transform: Transform, num_workers: int | None = None, progress: bool | None = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """All images and labels at once, float32 (N, C, H, W) and int64 (N,), for sets that fit in memory.
        Unreadable files are left out, as in `iter_batches`."""
        if not len(self):
            raise ValueError("load_arrays: the dataset is empty")
        batches = list(self.iter_batches(transform, 256, num_workers=num_workers, progress=progress))
        if not batches:
            raise ValueError(
                f"load_arrays: none of the {len(self)} images could be decoded; see dataset.skipped"
            )
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    def verify(self, num_workers: int | None = None, progress: bool | None = True) -> VerifyReport:
        """Decode every file (in worker processes, with a progress bar) and drop the unreadable ones.

        Returns what was checked and dropped; dropped files are also added to `skipped`. Raises ValueError,
        keeping every file, if dropping would leave a class that had images with none.
        """
        chunks = [self._paths[i : i + _VERIFY_CHUNK_SIZE] for i in range(0, len(self), _VERIFY_CHUNK_SIZE)]
        workers = _resolve_workers(num_workers, len(chunks))
        failures: list[SkippedImage] = []
        disable = None if progress is None else not progress
        with tqdm(total=len(self), unit="img", desc="verifying", disable=disable) as bar:
            results = _ordered_results(_check_chunk, [(chunk,) for chunk in chunks], workers)
            for chunk, result in zip(chunks, results, strict=True):
                failures.extend(result)
                bar.update(len(chunk))
        bad = {failure.path for failure in failures}
        keep = np.array([path not in bad for path in self._paths], dtype=bool)
        before = np.bincount(self._labels, minlength=self.num_classes)
        after = np.bincount(self._labels[keep], minlength=self.num_classes)
        self._record_skipped(failures, len(self), "they are dropped from this dataset")
        emptied = [int(i) for i in np.flatnonzero((before > 0) & (after == 0))]
        if emptied:
            label_of = dict(zip(self._paths, self._labels.tolist(), strict=True))
            examples = "; ".join(str(f) for f in failures if label_of[f.path] in emptied)
            emptied_names = [self._index_to_label[i] for i in emptied]
            raise ValueError(
                f"verify: no readable image left in class(es) {emptied_names} (every file failed to decode: "
                f"{examples[:500]}); add readable images to these classes or remove them"
            )
        self._paths = [path for path, ok in zip(self._paths, keep, strict=True) if ok]
        self._labels = self._labels[keep]
        return VerifyReport(checked=len(keep), skipped=tuple(failures))

    def _record_skipped(self, found: list[SkippedImage], total: int, advice: str) -> None:
        """Keep newly found unreadable files and log them in one message; files already known stay quiet."""
        known = {s.path for s in self._skipped}
        new = [s for s in dict.fromkeys(found) if s.path not in known]
        if not new:
            return
        self._skipped.extend(new)
        listed = "\n  ".join(str(s) for s in new[:_SHOWN])
        more = (
            f"\n  ... and {len(new) - _SHOWN} more (all in dataset.skipped; effnet train writes them to "
            "RUN/skipped.txt)"
            if len(new) > _SHOWN
            else ""
        )
        logger.warning(
            "skipped %d of %d images that cannot be decoded; %s:\n  %s%s",
            len(new),
            total,
            advice,
            listed,
            more,
        )


def _report_slow(slow: list[tuple[str, float]], total: int) -> None:
    """One message naming the files that took longer than `SLOW_DECODE_SECONDS` to decode, slowest first."""
    if not slow:
        return
    slow = sorted(slow, key=lambda item: -item[1])
    listed = "\n  ".join(f"{path}: {seconds:.1f} s" for path, seconds in slow[:_SHOWN])
    more = f"\n  ... and {len(slow) - _SHOWN} more" if len(slow) > _SHOWN else ""
    logger.warning(
        "%d of %d images took over %.1f s each to decode (%.0f s in all); downscaling them once (e.g. to "
        "2000 pixels on the long side) makes every run faster; the slowest:\n  %s%s",
        len(slow),
        total,
        SLOW_DECODE_SECONDS,
        sum(seconds for _, seconds in slow),
        listed,
        more,
    )


def _sorted_labels(labels: set[str]) -> list[str]:
    """Label names in sorted order; numerically when all are integers, so "10" comes after "9"."""
    if labels and all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _resolve_workers(num_workers: int | None, tasks: int) -> int:
    """Worker processes to use: 0 means decode in this process. No more workers than tasks."""
    if num_workers is not None:
        _check_count("num_workers", num_workers, minimum=0)
    if not _fork_safe():
        return 0
    if num_workers is None:
        # Available CPUs: sched_getaffinity respects container and taskset limits that os.cpu_count ignores.
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(available, tasks)
        return workers if workers > 1 else 0  # one task: a process would only add start-up time
    return min(int(num_workers), tasks)


def _check_picklable(transform: Transform) -> None:
    try:
        pickle.dumps(transform)
    except Exception as err:
        raise TypeError(
            f"transform {transform!r} cannot be sent to worker processes ({err}); use a module-level class "
            "or function such as EvalTransform, or pass num_workers=0 to decode in this process"
        ) from None


# Runtimes that start threads at import: forking a process that holds them can deadlock the child, and the
# alternatives (spawn, forkserver) re-import the user's main script in every worker, which re-runs a script
# without an ``if __name__ == "__main__"`` guard (a typical Model Maker script). So: decode in this process.
_FORK_UNSAFE = ("jax", "tensorflow")
_warned_in_process = False


def _fork_safe() -> bool:
    global _warned_in_process
    unsafe = [name for name in _FORK_UNSAFE if name in sys.modules]
    if unsafe and not _warned_in_process:
        logger.info("%s is loaded (LiteRT export brings it): decoding images in this process", unsafe[0])
        _warned_in_process = True
    return sys.platform == "linux" and not unsafe


def _ordered_results(function: Callable[..., Any], tasks: list[tuple], workers: int) -> Iterator[Any]:
    """``function(*task)`` for each task, in order. With workers, at most 2 x workers tasks are in flight,
    so results waiting for a slow consumer stay bounded."""
    if not workers:
        for task in tasks:
            yield function(*task)
        return
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    todo = iter(tasks)
    try:
        pending: deque[Future] = deque(
            executor.submit(function, *task) for task in itertools.islice(todo, 2 * workers)
        )
        while pending:
            result = pending.popleft().result()
            pending.extend(executor.submit(function, *task) for task in itertools.islice(todo, 1))
            yield result
    except BrokenProcessPool as err:
        raise RuntimeError(
            f"a decoding worker process died ({err}); if memory is short use fewer workers, otherwise run "
            "with num_workers=0 to see the error in this process"
        ) from err
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


# Worker functions are module-level so that they pickle under every start method (fork, spawn, forkserver).


def _decode_chunk(
    transform: Transform, paths: list[str], seed: int | None
) -> tuple[np.ndarray | None, np.ndarray, list[SkippedImage], list[tuple[str, float]]]:
    """(stacked images of the decodable files or None, which files decoded, the failures, the files slower
    than `SLOW_DECODE_SECONDS` with their seconds)."""
    if seed is not None:
        transform = copy.copy(transform)
        transform.rng = np.random.default_rng(seed)  # type: ignore[attr-defined]
    arrays: list[np.ndarray] = []
    decoded = np.zeros(len(paths), dtype=bool)
    failures: list[SkippedImage] = []
    slow: list[tuple[str, float]] = []
    for position, path in enumerate(paths):
        began = time.perf_counter()
        try:
            arrays.append(np.asarray(transform(path), dtype=np.float32))
            decoded[position] = True
        except ImageDecodeError as err:
            failures.append(SkippedImage(path, err.reason))
        seconds = time.perf_counter() - began
        if seconds > SLOW_DECODE_SECONDS:
            slow.append((path, seconds))
    return (np.stack(arrays) if arrays else None), decoded, failures, slow


def _check_chunk(paths: list[str]) -> list[SkippedImage]:
    failures = []
    for path in paths:
        try:
            load_image(path, target_size=_VERIFY_SIZE)
        except ImageDecodeError as err:
            failures.append(SkippedImage(path, err.reason))
    return failures
