"""Datasets too big to list in memory: tar shards of images + labels (WebDataset layout), streamed from disk.

`pack` writes ``train-000000.tar, ...`` (and ``validation-``/``test-`` shards for held-out fractions): each
sample is two members, ``<key>.<ext>`` (the image file's bytes, unchanged) and ``<key>.cls`` (the label
index as text), plus ``index.json`` with the class names and every shard's name, sample count and offset.
Samples are shuffled (seeded) before packing, so every shard mixes the classes.

`ShardDataset` streams one split. For training it is a torch IterableDataset of micro-batches: shards go
whole to (rank, worker) units, shard ``s`` to unit ``s mod units``; each unit reads its shards in a
per-epoch order through a seeded shuffle buffer. With fewer shards than units it falls back to sample
striding: every unit reads every shard and keeps the samples whose position ``p`` has ``p mod units ==
unit``. Either way each sample of an epoch goes to exactly one unit: nothing duplicated, nothing dropped
(except to give every rank the same number of full steps, which DDP needs). Augmentation is seeded per
sample from (seed, epoch, sample index), as in `effnet.data.loading`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from effnet.checkpoint import atomic_path, write_json
from effnet.data.dataset import ImageDataset
from effnet.data.loading import Batch, collate, decode
from effnet.data.splits import split_data

INDEX = "index.json"
FORMAT = "effnet.shards/1"
SPLITS = ("train", "validation", "test")
_BUFFER = 256  # shuffle buffer per unit: samples of a shard are interleaved with the next shards'


def is_shard_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / INDEX).is_file()


def pack(
    data: str | os.PathLike | ImageDataset,
    out_dir: str | os.PathLike,
    shard_size: int = 1000,
    val_split: float = 0.0,
    test_split: float = 0.0,
    seed: int = 0,
    progress: bool | None = None,
) -> Path:
    """Write ``data`` (a class-per-folder directory or an `ImageDataset`) as tar shards of ``shard_size``
    samples in ``out_dir``; held-out fractions go to their own shards (stratified split). Returns the index
    path. Each shard, and the index last, is written atomically."""
    from tqdm.auto import tqdm

    if shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {shard_size}")
    dataset = data if isinstance(data, ImageDataset) else ImageDataset.from_folder(data, seed=seed)
    rest, validation, test = split_data(dataset, val_split, test_split, seed)
    parts = {"train": rest.shuffled(seed), "test": test, "validation": validation}
    parts = {name: part for name, part in parts.items() if part is not None}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = {"format": FORMAT, "classes": dataset.index_to_label, "splits": {}}
    bar = tqdm(total=len(dataset), unit="img", desc="packing", disable=progress is False)
    for split, part in parts.items():
        shards, paths, labels = [], part.paths, part.labels
        for number, start in enumerate(range(0, len(part), shard_size)):
            name = f"{split}-{number:06d}.tar"
            count = min(shard_size, len(part) - start)
            with atomic_path(out / name) as tmp, tarfile.open(tmp, "w") as tar:
                for position in range(start, start + count):
                    key = f"{position:09d}"
                    ext = Path(paths[position]).suffix.lower() or ".img"
                    tar.add(paths[position], arcname=key + ext)
                    _add_bytes(tar, key + ".cls", str(int(labels[position])).encode())
                    bar.update(1)
            shards.append({"name": name, "count": count, "offset": start})
        index["splits"][split] = {"count": len(part), "shards": shards}
    bar.close()
    write_json(out / INDEX, index)
    return out / INDEX


def _add_bytes(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def read_shard(path: Path) -> Iterator[tuple[bytes, int]]:
    """(image bytes, label) of each sample in a shard, in order."""
    with tarfile.open(path, "r") as tar:
        pending: dict[str, dict[str, bytes]] = {}
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            fields = pending.setdefault(key, {})
            fields["cls" if ext == "cls" else "image"] = tar.extractfile(member).read()
            if len(fields) == 2:
                del pending[key]
                yield fields["image"], int(fields["cls"])
        if pending:
            raise ValueError(f"{path}: samples {sorted(pending)[:3]} lack an image or a .cls label; re-pack")


class ShardDataset:
    """One split of a packed directory (see `pack`): the class names, size and samples, streamed."""

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        self.root = Path(root)
        if not is_shard_dir(self.root):
            raise FileNotFoundError(
                f"{self.root}: no {INDEX}; write shards with `effnet data pack DATA_DIR OUT`"
            )
        text = (self.root / INDEX).read_text()
        index = json.loads(text)
        if index.get("format") != FORMAT:
            raise ValueError(f"{self.root / INDEX}: format {index.get('format')!r}, expected {FORMAT!r}")
        if split not in index["splits"]:
            raise ValueError(f"{self.root}: no {split!r} split (has {sorted(index['splits'])})")
        self.split = split
        self.index_to_label = list(index["classes"])
        self.shards = index["splits"][split]["shards"]
        self.size = index["splits"][split]["count"]
        self.fingerprint = hashlib.sha256(json.dumps(self.shards).encode()).hexdigest()[:16]
        self.transform, self.epoch, self.seed = None, 0, 0
        self.num_workers = 0

    @classmethod
    def splits(cls, root: str | os.PathLike) -> dict[str, ShardDataset]:
        index = json.loads((Path(root) / INDEX).read_text())
        return {split: cls(root, split) for split in index["splits"]}

    def __len__(self) -> int:
        return self.size

    @property
    def num_classes(self) -> int:
        return len(self.index_to_label)

    def __repr__(self) -> str:
        return f"ShardDataset({self.root}, split={self.split!r}, size={self.size}, shards={len(self.shards)})"

    # -- assignment -----------------------------------------------------------------------------------------

    def unit_plan(self, unit: int, units: int) -> tuple[list[int], bool]:
        """(shard numbers unit ``unit`` of ``units`` reads, whether it strides samples instead of shards)."""
        if len(self.shards) >= units:
            return list(range(unit, len(self.shards), units)), False
        return list(range(len(self.shards))), True

    def unit_count(self, unit: int, units: int) -> int:
        shards, striding = self.unit_plan(unit, units)
        if striding:
            return len(range(unit, self.size, units))
        return sum(self.shards[s]["count"] for s in shards)

    def samples(self, unit: int, units: int, epoch: int, seed: int, shuffle: bool = True) -> Iterator:
        """(image bytes, label, sample index) of one unit's share, in the epoch's order."""
        shards, striding = self.unit_plan(unit, units)
        rng = np.random.default_rng([seed, epoch, unit, units])
        if shuffle:
            shards = [shards[i] for i in rng.permutation(len(shards))]
        buffer: list = []
        for number in shards:
            offset = self.shards[number]["offset"]
            for position, (image, label) in enumerate(read_shard(self.root / self.shards[number]["name"])):
                index = offset + position
                if striding and index % units != unit:
                    continue
                if not shuffle:
                    yield image, label, index
                    continue
                buffer.append((image, label, index))
                if len(buffer) >= _BUFFER:
                    yield buffer.pop(int(rng.integers(len(buffer))))
        while buffer:
            yield buffer.pop(int(rng.integers(len(buffer)))) if shuffle else buffer.pop(0)

    # -- training -------------------------------------------------------------------------------------------

    def batches(
        self, global_batch: int, rank: int, world_size: int, accumulate: int, seed: int
    ) -> ShardBatches:
        return ShardBatches(self, global_batch, rank, world_size, accumulate, seed)

    def eval_batches(self, transform, batch_size: int, rank: int = 0, world_size: int = 1):
        """(images, labels) tensors of rank ``rank``'s share (every ``world_size``-th sample), in order."""
        chunk: list = []
        for image, label, index in self.samples(rank, world_size, 0, 0, shuffle=False):
            chunk.append((decode(transform, image, 0, 0, index), label))
            if len(chunk) == batch_size:
                images, labels = collate(chunk)
                chunk = []
                if len(labels):
                    yield images, labels
        if chunk:
            images, labels = collate(chunk)
            if len(labels):
                yield images, labels

    def iter_batches(self, transform, batch_size: int = 32, num_workers=None, progress=None, **_):
        """Like `ImageDataset.iter_batches`: numpy (images, labels) of all samples, in order (one process)."""
        for images, labels in self.eval_batches(transform, batch_size):
            yield images.numpy(), labels.numpy()


class _UnitStream(IterableDataset):
    """The micro-batches of one rank; each DataLoader worker is one unit (rank x workers + worker)."""

    def __init__(self, data: ShardDataset, plan: ShardBatches, epoch: int, transform, skips: list[int]):
        self.data, self.plan, self.epoch, self.transform, self.skips = data, plan, epoch, transform, skips

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        unit = self.plan.rank * self.plan.workers + worker
        micro, chunk, skip = self.plan.micro, [], self.skips[worker] * self.plan.micro
        for image, label, index in self.data.samples(unit, self.plan.units, self.epoch, self.plan.seed):
            if skip:  # resumed mid-epoch: these samples were trained on already (not decoded again)
                skip -= 1
                continue
            chunk.append((decode(self.transform, image, self.plan.seed, self.epoch, index), label))
            if len(chunk) == micro:
                yield (*collate(chunk), worker)
                chunk = []


class ShardBatches:
    """One rank's micro-batches of a `ShardDataset`, the same interface as `loading.FolderBatches`."""

    def __init__(self, data: ShardDataset, global_batch: int, rank: int, world_size: int, accumulate: int,
                 seed: int) -> None:  # fmt: skip
        from effnet.distributed import micro_batch_size

        self.data, self.rank, self.world_size, self.accumulate, self.seed = (
            data,
            rank,
            world_size,
            accumulate,
            seed,
        )
        self.micro = micro_batch_size(global_batch, world_size, accumulate)
        self.global_batch = global_batch
        self.workers = max(1, data.num_workers)
        self.units = world_size * self.workers
        # every rank must run the same number of steps: the fewest any rank can fill
        per_rank = [
            sum(data.unit_count(r * self.workers + w, self.units) // self.micro for w in range(self.workers))
            for r in range(world_size)
        ]
        self.steps_per_epoch = min(per_rank) // accumulate

    def _order(self) -> list[int]:
        """Which worker each of this rank's micro-batches comes from: DataLoader takes them round robin,
        passing over workers that have run out."""
        left = [
            self.data.unit_count(self.rank * self.workers + w, self.units) // self.micro
            for w in range(self.workers)
        ]
        order: list[int] = []
        while any(left):
            for w in range(self.workers):
                if left[w]:
                    order.append(w)
                    left[w] -= 1
        return order

    def epoch(self, epoch: int, transform, start_step: int = 0) -> Iterator[Batch]:
        wanted = self.steps_per_epoch * self.accumulate
        done = start_step * self.accumulate
        order = self._order()
        skips = [order[:done].count(w) for w in range(self.workers)]
        stream = _UnitStream(self.data, self, epoch, transform, skips)
        workers = self.data.num_workers
        loader = DataLoader(
            stream, batch_size=None, num_workers=workers, multiprocessing_context="fork" if workers else None
        )
        # The loader restarts its round robin at worker 0: put batches back in the uninterrupted run's order.
        queues: dict[int, list] = {w: [] for w in range(self.workers)}
        source = iter(loader)
        for taken in range(done, wanted):
            expected = order[taken]
            while not queues[expected]:
                images, labels, worker = next(source)
                queues[worker].append((images, labels))
            images, labels = queues[expected].pop(0)
            step, micro = divmod(taken, self.accumulate)
            yield step, micro, images, labels, self.global_batch
        del source, loader


def load_split(root: str | os.PathLike, split: str) -> ShardDataset | None:
    index = json.loads((Path(root) / INDEX).read_text())
    return ShardDataset(root, split) if split in index["splits"] else None


__all__ = ["ShardDataset", "is_shard_dir", "load_split", "pack", "read_shard"]
