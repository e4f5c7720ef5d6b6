"""Segmentation samples as the network sees them: each image decoded whole and plainly resized to ``size`` x
``size`` with the model's interpolation (no crop: the runtime's `effnet.runtime.segmentation` feeds exported
files the same pixels), its mask alike but nearest (a mask holds class indices, not intensities), held in
memory."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from effnet.data.images import ImageDecodeError, load_image
from effnet.data.segmentation import MaskError
from effnet.preprocessing import Preprocessing
from effnet.training.samples import normalize

log = logging.getLogger(__name__)


FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def resize_image(path, size: int, interpolation: str = "bilinear") -> np.ndarray:
    image = load_image(path)
    if image.size != (size, size):
        image = image.resize((size, size), FILTERS[interpolation])
    return np.asarray(image, dtype=np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)


class ResizedSegmentation:
    """Every usable sample of a `SegmentationData`: images uint8 [N, size, size, 3], masks uint8
    [N, size, size] (zeros with ``with_masks=False``: images only). ``kept``: indexes into ``data.samples``
    (a file that cannot be read since loading is logged and left out; ``skipped`` lists them as (path,
    reason))."""

    def __init__(
        self,
        data,
        size: int,
        interpolation: str = "bilinear",
        desc: str = "decoding images",
        progress: bool = True,
        with_masks: bool = True,
    ) -> None:
        self.size = size
        images, masks, self.kept, self.skipped = [], [], [], []
        for index, sample in enumerate(tqdm(data.samples, desc=desc, unit="img", disable=not progress)):
            try:
                image = resize_image(sample.path, size, interpolation)
                mask = resize_mask(sample.mask(), size) if with_masks else np.zeros((size, size), np.uint8)
                images.append(image)
                masks.append(mask)
            except (ImageDecodeError, MaskError) as error:
                log.warning("%s", error)
                self.skipped.append((sample.path, str(error)))
                continue
            self.kept.append(index)
        if not images:
            raise ValueError(f"{desc}: none of the {len(data.samples)} images could be read")
        self.images = np.stack(images)
        self.masks = np.stack(masks)

    def __len__(self) -> int:
        return len(self.images)

    def target(self, index: int, flipped: bool) -> torch.Tensor:
        mask = self.masks[index]
        return torch.from_numpy(np.ascontiguousarray(mask[:, ::-1] if flipped else mask)).long()

    def pixels(self, index: int, flipped: bool) -> np.ndarray:
        image = self.images[index : index + 1]
        return image[:, :, ::-1] if flipped else image

    def batches(self, preprocessing: Preprocessing, batch_size: int) -> Iterator[tuple[torch.Tensor, list]]:
        """(normalized images, indexes) in order, unflipped."""
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            yield normalize(self.images[start:stop], preprocessing), list(range(start, stop))
