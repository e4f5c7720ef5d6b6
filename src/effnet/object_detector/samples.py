"""Detection samples as the network sees them: each image plainly resized to ``size`` x ``size`` (no
letterbox, aspect not kept) with its boxes scaled alike, held in memory, and served to the training loop
(`effnet.training.train`) with optional horizontal flips.

Flips are drawn per sample from (seed, epoch, index), never from a running stream: a run resumed mid-epoch
or split across processes sees the same flips as an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from effnet import distributed
from effnet.data.images import ImageDecodeError, load_image
from effnet.preprocessing import Preprocessing

log = logging.getLogger(__name__)
Target = tuple[torch.Tensor, torch.Tensor]  # (boxes float32 [K, 4] xyxy at the input size, labels int64 [K])


def resize_sample(sample, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One `DetectionSample`'s image as uint8 [size, size, 3] and its boxes scaled to that size.

    The annotation's width and height define the boxes' frame. Raises `ImageDecodeError` for an image that
    cannot be decoded."""
    image = load_image(sample.path, target_size=(size, size))
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    scale = np.array([size / sample.width, size / sample.height] * 2, dtype=np.float32)
    return np.asarray(image, dtype=np.uint8), np.asarray(sample.boxes, np.float32).reshape(-1, 4) * scale


def flip_boxes(boxes: np.ndarray | torch.Tensor, size: int):
    """Boxes of an image of width ``size`` mirrored left-right."""
    flipped = boxes.copy() if isinstance(boxes, np.ndarray) else boxes.clone()
    flipped[:, 0], flipped[:, 2] = size - boxes[:, 2], size - boxes[:, 0]
    return flipped


def normalize(images: np.ndarray, preprocessing: Preprocessing) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W], ``(x / 255 - mean) / std``."""
    mean = torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (pixels - mean) / std


class ResizedImages:
    """Every decodable image of a `DetectionData`, resized (uint8, [N, size, size, 3]), with its targets.

    ``kept``: the indexes into ``data.samples`` of the images held (an undecodable one is logged and left
    out; ``skipped`` lists them as (path, reason))."""

    def __init__(self, data, size: int, desc: str = "decoding images", progress: bool = True) -> None:
        self.size = size
        images, boxes, labels, self.kept, self.skipped = [], [], [], [], []
        for index, sample in enumerate(tqdm(data.samples, desc=desc, unit="img", disable=not progress)):
            try:
                pixels, scaled = resize_sample(sample, size)
            except ImageDecodeError as error:
                log.warning("%s", error)
                self.skipped.append((sample.path, str(error)))
                continue
            images.append(pixels)
            boxes.append(torch.from_numpy(scaled))
            labels.append(torch.as_tensor(np.asarray(sample.labels), dtype=torch.long).reshape(-1))
            self.kept.append(index)
        if not images:
            raise ValueError(f"{desc}: none of the {len(data.samples)} images could be decoded")
        self.images = np.stack(images)
        self.targets: list[Target] = list(zip(boxes, labels, strict=True))

    def __len__(self) -> int:
        return len(self.images)

    def target(self, index: int, flipped: bool) -> Target:
        boxes, labels = self.targets[index]
        return (flip_boxes(boxes, self.size) if flipped else boxes), labels

    def batches(self, preprocessing: Preprocessing, batch_size: int) -> Iterator[tuple[torch.Tensor, list]]:
        """(normalized images, indexes) in order, unflipped."""
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            yield normalize(self.images[start:stop], preprocessing), list(range(start, stop))


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
        self, size: int, get: Callable[[int, bool], tuple[torch.Tensor, Target]], shuffle: bool = True
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
