"""Class names shipped with the package."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def _imagenet_labels() -> tuple[str, ...]:
    text = resources.files("effnet.data").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != 1000:  # a packaging mistake, not a user error: fail loudly
        raise RuntimeError(f"effnet/data/imagenet_classes.txt has {len(labels)} names, expected 1000")
    return labels


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k (ILSVRC2012) class names in the standard index order used by torchvision, timm
    and TF models (0 "tench", 281 "tabby", 967 "espresso"). Two names repeat, as in the original synsets:
    "crane" (134 bird, 517 machine) and "maillot" (638, 639). A fresh list each call; reading is cached."""
    return list(_imagenet_labels())
