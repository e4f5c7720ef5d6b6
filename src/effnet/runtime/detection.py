"""Object detection with an exported detector file: image -> plain resize -> the file -> boxes in the
original image's pixels.

An effnet detector file (`effnet.export.detection.export_detector`) holds the network and its
post-processing (top-k, box decoding, class-aware greedy NMS) and has four outputs, the layout of TFLite
detection models (what the TFLite Task Library's ObjectDetector reads):

- ``boxes`` [1, D, 4]: (ymin, xmin, ymax, xmax), normalized to 0..1 of the input image;
- ``classes`` [1, D]: the label index, as float32;
- ``scores`` [1, D]: per-class sigmoid scores, decreasing;
- ``count`` [1]: how many rows are detections (float32); the rest is padding with score 0.

Images are resized to the square input with no letterbox (the aspect ratio is not kept), as detector
training resizes them, so a normalized box maps to the original image by multiplying with its width and
height.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from effnet.data.images import ImageSource, load_image
from effnet.preprocessing import Preprocessing

DETECTION_OUTPUTS = ("boxes", "classes", "scores", "count")
DEFAULT_SCORE_THRESHOLD = 0.3
_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def resize_for_detection(
    image: ImageSource, preprocessing: Preprocessing
) -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` (a path, PIL image, array or bytes) as the detector's input: resized to
    ``preprocessing.input_size`` with no crop and no letterbox, scaled to 0..1, ``(x - mean) / std``, CHW
    float32; and the image's own (width, height). Raises `effnet.data.ImageDecodeError` for an image that
    cannot be decoded."""
    height, width = preprocessing.input_size
    # decoded at full size: a reduced decode (load_image's target_size) would hide the size boxes map to
    rgb = load_image(image, background=preprocessing.background)
    size = rgb.size
    if size != (width, height):
        rgb = rgb.resize((width, height), _FILTERS[preprocessing.interpolation])
    pixels = np.asarray(rgb, dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(preprocessing.mean, np.float32)) / np.asarray(preprocessing.std, np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)), size


def detections_in_pixels(
    outputs: Sequence[np.ndarray],
    width: int,
    height: int,
    labels: Sequence[str] | None,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
) -> list[dict[str, Any]]:
    """One image's file outputs (boxes [D, 4], classes [D], scores [D], count: batch row 0 of each) as a
    list of ``{"box": [xmin, ymin, xmax, ymax], "label", "index", "score"}``, box in pixels of a ``width``
    x ``height`` image, scores >= ``score_threshold``, highest first."""
    boxes, classes, scores, count = (np.asarray(output, dtype=np.float32) for output in outputs)
    found = []
    for row in range(min(round(float(count.reshape(-1)[0])), len(scores))):
        score = float(scores[row])
        if score < score_threshold or score <= 0:
            continue
        ymin, xmin, ymax, xmax = (float(v) for v in np.clip(boxes[row], 0.0, 1.0))
        index = round(float(classes[row]))
        label = labels[index] if labels is not None and 0 <= index < len(labels) else str(index)
        found.append(
            {
                "box": [xmin * width, ymin * height, xmax * width, ymax * height],
                "label": label,
                "index": index,
                "score": score,
            }
        )
    found.sort(key=lambda detection: -detection["score"])
    return found


def check_score_threshold(score_threshold: Any) -> float:
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)):
        raise TypeError(f"score_threshold must be a number in [0, 1], got {score_threshold!r}")
    if not 0.0 <= float(score_threshold) <= 1.0:
        raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
    return float(score_threshold)
