"""Real photos for int8 calibration and as the timed input, when the user gives no data of their own."""

from __future__ import annotations

import numpy as np
from PIL import Image

from effnet.data.samples import random_crops
from effnet.data.transforms import EvalTransform
from effnet.preprocessing import Preprocessing

_SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "motorcycle_left")


def sample_photos() -> list[Image.Image]:
    """The colour photos scikit-learn ships (china, flower), plus scikit-image's when it is installed."""
    from sklearn.datasets import load_sample_image

    photos = [Image.fromarray(load_sample_image(f"{name}.jpg")) for name in ("china", "flower")]
    try:
        from skimage import data
    except ImportError:
        return photos
    for name in _SKIMAGE_PHOTOS:
        array = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
        photos.append(Image.fromarray(array).convert("RGB"))
    return photos


def photo_crops(preprocessing: Preprocessing, count: int, seed: int = 0) -> np.ndarray:
    """``count`` random crops (30-100% of a side, random flips) of the sample photos, preprocessed for the
    model: float32 (count, 3, H, W). Different crops give int8 calibration the spread of real inputs."""
    transform = EvalTransform(preprocessing)
    crops = random_crops(sample_photos(), count, seed)
    return np.stack([transform(crop) for crop in crops]).astype(np.float32)
