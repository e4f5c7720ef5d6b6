"""Training settings of `image_segmenter.create`, sized for a CPU."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from effnet.training.dense_hparams import FINE_TUNING_EPOCHS, FROZEN_EPOCHS, DenseHParams

__all__ = ["DEFAULT_INPUT_SIZE", "FINE_TUNING_EPOCHS", "FROZEN_EPOCHS", "SegmenterHParams"]

DEFAULT_INPUT_SIZE = 256  # the specs' 512 (torchvision's training crop is 480-520) is slow on a CPU


@dataclass
class SegmenterHParams(DenseHParams):
    """Settings of one segmenter training run; ``None`` fields are resolved by `resolved()` (epochs:
    `FROZEN_EPOCHS` with a frozen backbone, `FINE_TUNING_EPOCHS` when fine-tuning).

    The optimizer follows torchvision's segmentation reference (references/segmentation/train.py: SGD,
    momentum 0.9, weight decay 1e-4, the learning rate decaying to 0; here after a short warm-up, by a
    cosine). Its rate of 0.02 is for a batch of 32; the head on cached features at a CPU batch of 8 trained
    faster at 0.05. ``input_size``: the square side images and masks are resized to (None:
    `DEFAULT_INPUT_SIZE`). ``flip``: horizontal flips (image and mask); a frozen backbone caches the flipped
    images' features once, next to the plain ones. ``probe_epochs``: when fine-tuning, first train the new
    head this many epochs on a frozen backbone (cached features, cheap). ``output_stride``: 8, 16 or 32
    (None: the spec's 16).
    """

    output_stride: int | None = None

    min_batch_size: ClassVar[int] = 2  # the head's BatchNorm needs two samples

    def resolved(self) -> SegmenterHParams:
        return replace(super().resolved(), input_size=self.input_size or DEFAULT_INPUT_SIZE)

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of its range."""
        super().validate()
        if self.output_stride is not None and self.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {self.output_stride!r}")
