"""Small real datasets written as image folders, for the demo, tests and benchmarks (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from effnet.validation import check_integer


def write_digits_folder(root: str | Path, limit: int | None = None) -> Path:
    """scikit-learn's 1,797 real handwritten digits (8x8, 16 gray levels) as PNG files in one sub-folder per
    class (``root/0/0000.png`` ...). Existing files are kept, so calling it twice is cheap."""
    from sklearn.datasets import load_digits

    if limit is not None:
        check_integer("limit", limit, 1)
    digits = load_digits()
    root = Path(root)
    count = len(digits.images) if limit is None else min(limit, len(digits.images))
    for index in range(count):
        folder = root / str(digits.target[index])
        path = folder / f"{index:04d}.png"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (digits.images[index] * (255.0 / 16.0)).round().astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(path)
    return root


TEXTURE_SOURCES = (
    "brick",
    "grass",
    "gravel",
    "coins",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "coffee",
    "astronaut",
)


def write_textures_folder(root: str | Path, per_class: int = 60, seed: int = 0) -> Path:
    """A 10-class texture/scene dataset cut from real photos that scikit-image ships (brick, grass, gravel,
    coins, moon, Hubble deep field, immunohistochemistry, retina, coffee, astronaut): ``per_class`` random
    square crops (20-35% of the photo's shorter side) per photo and split, written as
    ``root/train/<photo>/*.png`` from the photo's left half and ``root/test/<photo>/*.png`` from its right
    half, so no test pixel was ever seen in training. Needs scikit-image (``pip install scikit-image``)."""
    try:
        from skimage import data as skimage_data
    except ImportError as error:
        raise ImportError(
            "the textures sample needs scikit-image: pip install scikit-image (or effnet[dev])"
        ) from error

    root = Path(root)
    rng = np.random.default_rng(seed)
    for name in TEXTURE_SOURCES:
        image = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
        half = image.width // 2
        for split, left_edge in (("train", 0), ("test", half)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                side = int(min(half, image.height) * rng.uniform(0.2, 0.35))
                left = left_edge + int(rng.integers(0, half - side + 1))
                top = int(rng.integers(0, image.height - side + 1))
                path = folder / f"{index:04d}.png"
                if not path.exists():
                    image.crop((left, top, left + side, top + side)).save(path)
    return root


def random_crops(photos: list[Image.Image], count: int, seed: int = 0) -> list[Image.Image]:
    """``count`` random crops (30-100% of each side, half of them mirrored) cycling through ``photos``:
    varied real inputs, e.g. to calibrate int8 quantization when no dataset is at hand."""
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        scale = rng.uniform(0.3, 1.0)
        width, height = int(photo.width * scale), int(photo.height * scale)
        left = int(rng.integers(0, photo.width - width + 1))
        top = int(rng.integers(0, photo.height - height + 1))
        crop = photo.crop((left, top, left + width, top + height))
        crops.append(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop)
    return crops
