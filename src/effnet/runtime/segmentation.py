"""Semantic segmentation with an exported segmenter file: image -> plain resize -> the file -> a class index
per pixel of the original image.

An effnet segmenter file (`effnet.image_segmenter.ImageSegmenter.export`) takes the square input every
exported model takes and outputs per-pixel class logits at the input size, [1, S, S, C] (channels last in
both .onnx and .tflite, so the class axis is the last one). The image is resized to the input with no crop
and no letterbox, as in training; the label map (argmax over the classes) is resized back to the image's
own size by nearest neighbour.

numpy and Pillow only (no torch).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from effnet.data.segmentation import IGNORE_INDEX, voc_palette


def labels_at_size(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 class indices [height, width] from one image's logits [S, S, C] at the input size."""
    labels = np.asarray(logits).argmax(-1).astype(np.uint8)
    if labels.shape != (height, width):
        labels = np.asarray(Image.fromarray(labels).resize((width, height), Image.Resampling.NEAREST))
    return labels


def colour_overlay(image: Image.Image, labels: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """``image`` with every pixel of a class other than 0 (the background) and 255 (ignore) tinted with
    its Pascal VOC colour, at ``opacity``."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    labels = np.asarray(labels)
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"labels of shape {labels.shape} do not match the image's {rgb.shape[:2]}")
    colours = voc_palette()[labels].astype(np.float32)
    tinted = (labels != 0) & (labels != IGNORE_INDEX)
    rgb[tinted] = (1 - opacity) * rgb[tinted] + opacity * colours[tinted]
    return Image.fromarray(rgb.round().astype(np.uint8))
