"""Detection samples as the network sees them: each image plainly resized to ``size`` x ``size`` (no
letterbox, aspect not kept) with its boxes scaled alike, held in memory, and served to the training loop
(`effnet.training.train`) with optional horizontal flips (`effnet.training.samples`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from effnet.data.images import ImageDecodeError, load_image
from effnet.preprocessing import Preprocessing
from effnet.training.samples import Flips, SampleBatches, TrainingSamples, normalize

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


__all__ = ["Flips", "ResizedImages", "SampleBatches", "TrainingSamples", "flip_boxes", "normalize"]
