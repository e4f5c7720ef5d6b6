"""How images are turned into model input.

One `Preprocessing` object travels with a model and with its weights: training, evaluation, export metadata
and the runtime predictor all read the same object, so an exported file is never fed differently from how its
weights were trained. It has no torch dependency so the runtime can use it alone.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TF EfficientNet-Lite and EdgeTPU models use (x - 127) / 128 on 0..255 input ("inception-style" for better
# post-training quantization); on the 0..1 scale used here that is mean 127/255, std 128/255.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
# (x - 128) / 128 on 0..255, used by EfficientNetV2-S/M/L.
V2_MEAN = (128.0 / 255.0,) * 3
V2_STD = (128.0 / 255.0,) * 3
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """Eval preprocessing: resize the short side to ``input_size / crop_pct``, center-crop ``input_size``,
    scale to 0..1, then ``(x - mean) / std`` per channel. Images with transparency are composited on
    ``background`` first (white keeps line art visible; black would erase it)."""

    input_size: tuple[int, int] = (224, 224)  # (height, width)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bicubic"
    background: tuple[int, int, int] = field(default=(255, 255, 255))

    def __post_init__(self) -> None:
        size = self.input_size
        pair = (size, size) if isinstance(size, numbers.Real) else tuple(size)
        if len(pair) != 2 or not all(_is_pixel_count(side) for side in pair):
            raise ValueError(f"input_size must be an int or (height, width) of positive ints, got {size!r}")
        object.__setattr__(self, "input_size", (int(pair[0]), int(pair[1])))
        for name in ("mean", "std", "background"):
            value = tuple(getattr(self, name))
            if len(value) != 3:
                raise ValueError(f"{name} needs 3 values (R, G, B), got {value!r}")
            object.__setattr__(self, name, value)
        if not all(math.isfinite(m) for m in self.mean):
            raise ValueError(f"mean values must be finite, got {self.mean!r}")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"std values must be finite and positive, got {self.std!r}")
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")

    @property
    def resize_size(self) -> tuple[int, int]:
        """Size of the image before the center crop, (height, width)."""
        h, w = self.input_size
        return math.floor(h / self.crop_pct), math.floor(w / self.crop_pct)

    def with_size(self, input_size: int | tuple[int, int]) -> Preprocessing:
        return replace(self, input_size=input_size)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("input_size", "mean", "std", "background"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preprocessing fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _is_pixel_count(side: Any) -> bool:
    """A positive whole number (224 or 224.0; not True, 0, 1.5 or nan)."""
    if isinstance(side, bool) or not isinstance(side, numbers.Real) or not math.isfinite(side):
        return False
    return side >= 1 and side == int(side)


def tf_crop_pct(image_size: int, crop_padding: int = 32) -> float:
    """The TF EfficientNet eval crop: the center ``size / (size + 32)`` of the short side."""
    return image_size / (image_size + crop_padding)
