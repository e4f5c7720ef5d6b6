"""Small real datasets written as image folders, for the demo, tests and benchmarks (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_digits_folder(root: str | Path, limit: int | None = None) -> Path:
    """scikit-learn's 1,797 real handwritten digits (8x8, 16 gray levels) as PNG files in one sub-folder per
    class (``root/0/0000.png`` ...). Existing files are kept, so calling it twice is cheap."""
    from sklearn.datasets import load_digits

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
