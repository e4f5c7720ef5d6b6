"""Image -> normalized float32 CHW arrays, driven by a model's `Preprocessing`.

numpy and Pillow only (no torch): the exported-model runtime uses the same `EvalTransform` as training and
evaluation, so a deployed model is fed exactly what it was validated on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from effnet.data.images import ImageSource, load_image
from effnet.preprocessing import Preprocessing

_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


class EvalTransform:
    """Resize so the image covers ``resize_size`` (aspect kept), center-crop ``input_size``, scale to 0..1,
    ``(x - mean) / std``, HWC -> CHW. Returns float32 arrays of shape (3, height, width)."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        if not isinstance(preprocessing, Preprocessing):
            raise TypeError(
                f"EvalTransform expects a Preprocessing, got {type(preprocessing).__name__}; "
                "use transforms_for(model) to build one from a model"
            )
        self.preprocessing = preprocessing
        self._filter = _FILTERS[preprocessing.interpolation]

    def __call__(self, image: ImageSource) -> np.ndarray:
        pre = self.preprocessing
        rgb = load_image(image, background=pre.background, target_size=pre.resize_size)
        return _normalize(_resize_cover_center_crop(rgb, pre, self._filter), pre)

    def batch(self, images: Iterable[ImageSource]) -> np.ndarray:
        """Transform each image and stack them: float32 (N, 3, height, width)."""
        arrays = [self(image) for image in images]
        if not arrays:
            raise ValueError("EvalTransform.batch: got no images; pass at least one")
        return np.stack(arrays)

    def __repr__(self) -> str:
        pre = self.preprocessing
        return (
            f"EvalTransform(input_size={pre.input_size}, resize_size={pre.resize_size}, "
            f"interpolation={pre.interpolation!r}, mean={_fmt(pre.mean)}, std={_fmt(pre.std)}, "
            f"background={pre.background})"
        )


def transforms_for(model_or_preprocessing: Any) -> EvalTransform:
    """The eval transform for a model (anything with a ``.preprocessing`` attribute) or a `Preprocessing`."""
    if isinstance(model_or_preprocessing, Preprocessing):
        return EvalTransform(model_or_preprocessing)
    preprocessing = getattr(model_or_preprocessing, "preprocessing", None)
    if isinstance(preprocessing, Preprocessing):
        return EvalTransform(preprocessing)
    found = type(model_or_preprocessing).__name__
    if preprocessing is not None:
        found += f" whose .preprocessing is a {type(preprocessing).__name__}"
    raise TypeError(
        f"transforms_for expects a Preprocessing or a model with a .preprocessing attribute, got {found}; "
        "pass effnet.preprocessing.Preprocessing(...) or a model built by effnet"
    )


class TrainTransform:
    """Augmenting transform for fine-tuning, reproducible from ``seed``.

    Steps: random-resized-crop to ``input_size`` (area fraction in ``scale``, aspect ratio in ``ratio``; after
    10 rejected draws, the central crop at the nearest allowed ratio), horizontal flip with probability
    ``flip_p``, optional color jitter (each of ``brightness``, ``contrast``, ``saturation`` picks a factor in
    ``[1 - v, 1 + v]``; 0 turns it off), then the same normalization as `EvalTransform`.

    ``random_crop=False`` uses the eval resize + center crop instead; with every augmentation off the
    output equals `EvalTransform`'s, which is what to use for no augmentation at all.

    ``seed``: an int, or a `numpy.random.Generator` to draw from (shared, not copied). The same seed and the
    same image order give the same outputs. Give each worker process its own seed (e.g. base + worker id);
    a generator copied into several workers would repeat the same augmentations in each.
    """

    def __init__(
        self,
        preprocessing: Preprocessing,
        *,
        seed: int | np.random.Generator | None = None,
        random_crop: bool = True,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        flip_p: float = 0.5,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
    ) -> None:
        if not isinstance(preprocessing, Preprocessing):
            raise TypeError(f"TrainTransform expects a Preprocessing, got {type(preprocessing).__name__}")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1, got {scale!r}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be (low, high) with 0 < low <= high, got {ratio!r}")
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p!r}")
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns it off), got {value!r}")
        self.preprocessing = preprocessing
        self.rng = np.random.default_rng(seed)
        self.random_crop = random_crop
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip = flip
        self.flip_p = flip_p
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self._filter = _FILTERS[preprocessing.interpolation]

    def __call__(self, image: ImageSource) -> np.ndarray:
        pre = self.preprocessing
        rgb = load_image(image, background=pre.background, target_size=self._decode_size())
        if self.random_crop:
            top, left, height, width = self._crop_box(rgb.height, rgb.width)
            out_h, out_w = pre.input_size
            box = (left, top, left + width, top + height)
            rgb = rgb.resize((out_w, out_h), self._filter, box=box)
        else:
            rgb = _resize_cover_center_crop(rgb, pre, self._filter)
        if self.flip and self.rng.random() < self.flip_p:
            rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        rgb = self._jitter(rgb)
        return _normalize(rgb, pre)

    def _decode_size(self) -> tuple[int, int]:
        if not self.random_crop:
            return self.preprocessing.resize_size
        # The smallest crop keeps sqrt(scale_low / ratio_extreme) of a side; decode large enough that even
        # it is not upsampled from a reduced decode.
        extreme = max(self.ratio[1], 1.0 / self.ratio[0])
        side_fraction = math.sqrt(self.scale[0] / extreme)
        height, width = self.preprocessing.input_size
        return math.ceil(height / side_fraction), math.ceil(width / side_fraction)

    def _crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, crop_height, crop_width), the Inception random-resized-crop recipe."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * self.rng.uniform(*self.scale)
            aspect = math.exp(self.rng.uniform(*log_ratio))
            crop_w = round(math.sqrt(target_area * aspect))
            crop_h = round(math.sqrt(target_area / aspect))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(self.rng.integers(0, height - crop_h + 1))
                left = int(self.rng.integers(0, width - crop_w + 1))
                return top, left, crop_h, crop_w
        # Fallback: the whole image, trimmed to the nearest aspect ratio the range allows.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            crop_w, crop_h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            crop_w, crop_h = round(height * self.ratio[1]), height
        else:
            crop_w, crop_h = width, height
        return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w

    def _jitter(self, image: Image.Image) -> Image.Image:
        # Fixed order (brightness, contrast, saturation) so one seed maps to one sequence of draws.
        for strength, enhancer in (
            (self.brightness, ImageEnhance.Brightness),
            (self.contrast, ImageEnhance.Contrast),
            (self.saturation, ImageEnhance.Color),
        ):
            if strength > 0:
                factor = self.rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength)
                image = enhancer(image).enhance(factor)
        return image

    def __repr__(self) -> str:
        pre = self.preprocessing
        crop = "center_crop"
        if self.random_crop:
            crop = f"random_crop(scale={self.scale}, ratio={_fmt(self.ratio)})"
        flip = f"flip_p={self.flip_p}" if self.flip else "flip=False"
        return (
            f"TrainTransform(input_size={pre.input_size}, {crop}, {flip}, brightness={self.brightness}, "
            f"contrast={self.contrast}, saturation={self.saturation}, interpolation={pre.interpolation!r}, "
            f"mean={_fmt(pre.mean)}, std={_fmt(pre.std)})"
        )


# The cover resize of a long, thin image is mostly cropped away: a 1 x 5000 strip covering 256 x 256 becomes
# 256 x 1,280,000 pixels (1 GB) before the 224 x 224 crop. Above this multiple of the crop's area, only the
# source box under the crop is resized: the same filter and scale, so the same pixels to within rounding.
_MAX_INTERMEDIATE_AREA = 16


def _resize_cover_center_crop(
    image: Image.Image, pre: Preprocessing, resample: Image.Resampling
) -> Image.Image:
    """Resize so the image covers ``pre.resize_size`` (aspect kept), then center-crop ``pre.input_size``;
    never allocating more than `_MAX_INTERMEDIATE_AREA` crops' worth of pixels."""
    new_w, new_h = _cover_size(image.size, pre.resize_size)
    crop_h, crop_w = pre.input_size
    top = round((new_h - crop_h) / 2)
    left = round((new_w - crop_w) / 2)
    if new_w * new_h <= _MAX_INTERMEDIATE_AREA * crop_w * crop_h:
        resized = image if (new_w, new_h) == image.size else image.resize((new_w, new_h), resample)
        return resized.crop((left, top, left + crop_w, top + crop_h))
    scale_x, scale_y = image.width / new_w, image.height / new_h
    box = (left * scale_x, top * scale_y, (left + crop_w) * scale_x, (top + crop_h) * scale_y)
    return image.resize((crop_w, crop_h), resample, box=box)


def _cover_size(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """(width, height) that (width, height) ``size`` scales to, aspect kept, to cover (height, width)
    ``target``: the short side matches."""
    width, height = size
    target_h, target_w = target
    scale = max(target_h / height, target_w / width)
    # round(), and the max() guard, because target/h*h can land a hair below an integer in floating point.
    return max(target_w, round(width * scale)), max(target_h, round(height * scale))


def _normalize(image: Image.Image, pre: Preprocessing) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(pre.mean, dtype=np.float32)) / np.asarray(pre.std, dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
