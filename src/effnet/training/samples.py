"""What a task hands the training loop when its samples are held in memory (resized images, or a frozen
backbone's cached features): `TrainingSamples` with per-sample horizontal flips drawn from (seed, epoch,
index), never from a running stream, so a run resumed mid-epoch or split across processes sees the same
flips as an uninterrupted one; `pack_features` / `unpack_features` carry several feature maps per sample as
one tensor. The detector and the segmenter both train this way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from effnet import distributed
from effnet.preprocessing import Preprocessing


def normalize(images: np.ndarray, preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W], ``(x / 255 - mean) / std``."""
    mean = torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (pixels - mean) / std


def pack_features(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Feature maps [N, C, H, W] of several levels as one tensor [N, D, 1, 1] (the loop moves one tensor
    per batch, in channels-last layout, which a 4-d tensor of 1 x 1 maps allows)."""
    return torch.cat([f.flatten(1) for f in features], 1)[:, :, None, None]


def unpack_features(packed: torch.Tensor, shapes: Sequence[tuple[int, int, int]]) -> list[torch.Tensor]:
    flat = packed.flatten(1)
    sizes = [c * h * w for c, h, w in shapes]
    return [
        part.reshape(len(packed), *shape) for part, shape in zip(flat.split(sizes, 1), shapes, strict=True)
    ]


class Flips:
    """The epoch's training transform: whether sample ``index`` is flipped, drawn from (seed, epoch, index)
    with ``probability``."""

    def __init__(self, probability: float, seed: int, epoch: int) -> None:
        self.probability, self.seed, self.epoch = probability, seed, epoch

    def __call__(self, index: int) -> bool:
        if self.probability <= 0:
            return False
        return bool(np.random.default_rng([self.seed, self.epoch, index]).random() < self.probability)


class TrainingSamples:
    """What `effnet.training.train` iterates: ``len()`` and ``batches(...)`` (as a sharded dataset offers).

    ``get(index, flipped) -> (input tensor, target)`` makes one sample: a normalized image when the whole
    network trains, cached backbone features when only the neck and heads do."""

    def __init__(
        self, size: int, get: Callable[[int, bool], tuple[torch.Tensor, Any]], shuffle: bool = True
    ) -> None:
        self.size, self.get, self.shuffle = size, get, shuffle

    def __len__(self) -> int:
        return self.size

    def batches(self, global_batch: int, rank: int, world_size: int, accumulate: int, seed: int):
        sampler = distributed.GlobalBatchSampler(
            self.size, global_batch, rank, world_size, accumulate, self.shuffle, seed
        )
        return SampleBatches(self, sampler)


class SampleBatches:
    """One rank's micro-batches of `TrainingSamples`, laid out by a `GlobalBatchSampler`."""

    def __init__(self, samples: TrainingSamples, sampler) -> None:
        self.samples, self.sampler = samples, sampler

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int, flips: Flips, start_step: int = 0):
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(start_step)
        for step, micro, indices, count in self.sampler:
            made = [self.samples.get(int(i), flips(int(i))) for i in indices]
            yield step, micro, torch.stack([m[0] for m in made]), [m[1] for m in made], count
