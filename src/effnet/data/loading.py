"""Batches for training loops on torch's DataLoader: decoding in worker processes, one rank's share of each
global batch, augmentation that is a function of (seed, epoch, sample index).

Seeding augmentation per sample (not from one stream per worker or chunk) makes a sample look the same
whichever rank or worker decodes it, so a run resumed mid-epoch, or run on another number of processes,
feeds the network exactly the same pixels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from effnet.data.dataset import ImageDataset
from effnet.data.images import ImageDecodeError

Batch = tuple[int, int, torch.Tensor, torch.Tensor, int]  # (step in epoch, micro step, images, labels, count)


def seeded(transform: Callable, seed: int, epoch: int, index: int) -> Callable:
    """``transform`` with its ``rng`` (if it has a numpy Generator) drawn from (seed, epoch, index)."""
    if not isinstance(getattr(transform, "rng", None), np.random.Generator):
        return transform
    copied = copy.copy(transform)
    copied.rng = np.random.default_rng([seed, epoch, index])
    return copied


def decode(transform: Callable, source, seed: int, epoch: int, index: int) -> np.ndarray | None:
    """One sample through a per-sample seeded transform; None when it cannot be decoded."""
    try:
        return np.asarray(seeded(transform, seed, epoch, index)(source), dtype=np.float32)
    except ImageDecodeError:
        return None


def collate(samples: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (image, label) pairs, leaving out the undecodable (None) ones."""
    kept = [(image, label) for image, label in samples if image is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.from_numpy(np.stack([k[0] for k in kept])), torch.tensor([k[1] for k in kept])


class _IndexedImages(Dataset):
    def __init__(self, dataset: ImageDataset, transform: Callable, seed: int, epoch: int) -> None:
        self.paths, self.labels = dataset.paths, dataset.labels
        self.transform, self.seed, self.epoch = transform, seed, epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        image = decode(self.transform, self.paths[index], self.seed, self.epoch, index)
        return image, int(self.labels[index])


class FolderBatches:
    """One rank's micro-batches of an `ImageDataset`, laid out by a `GlobalBatchSampler`."""

    def __init__(self, dataset: ImageDataset, sampler, num_workers: int = 0, seed: int = 0) -> None:
        self.dataset, self.sampler, self.num_workers, self.seed = dataset, sampler, num_workers, seed

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int, transform: Callable, start_step: int = 0) -> Iterator[Batch]:
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(start_step)
        plan = list(self.sampler)
        if not plan:
            return
        loader = DataLoader(
            _IndexedImages(self.dataset, transform, self.seed, epoch),
            batch_sampler=[indices.tolist() for _, _, indices, _ in plan],
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=False,
            multiprocessing_context="fork" if self.num_workers else None,
        )
        for (step, micro, _, count), (images, labels) in zip(plan, loader, strict=True):
            yield step, micro, images, labels, count
