"""Box arithmetic shared by training, post-processing and evaluation: IoU and center-size box coding.

Boxes are float (xmin, ymin, xmax, ymax) in pixels. Deltas are (dx, dy, dw, dh):
dx = wx * (cx - cxa) / wa, dy = wy * (cy - cya) / ha, dw = ww * log(w / wa), dh = wh * log(h / ha),
with (wx, wy, ww, wh) the detector's ``box_coder_weights``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

# exp(dw) is clamped so a wild regression output cannot overflow: at most 1000 / 16 times the anchor's size
MAX_LOG_SCALE = math.log(1000.0 / 16)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection over union of ``a`` [M, 4] and ``b`` [N, 4]: [M, N] (0 where both are empty)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    size = (bottom_right - top_left).clamp(min=0)
    intersection = size[..., 0] * size[..., 1]
    union = area_a[:, None] + area_b[None, :] - intersection
    return intersection / union.clamp(min=torch.finfo(union.dtype).tiny)


def _center_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * width, boxes[..., 1] + 0.5 * height, width, height


def encode(boxes: torch.Tensor, anchors: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """The deltas [..., 4] that turn ``anchors`` [..., 4] into ``boxes`` [..., 4]."""
    wx, wy, ww, wh = weights
    cx, cy, w, h = _center_size(boxes)
    cxa, cya, wa, ha = _center_size(anchors)
    return torch.stack(
        [wx * (cx - cxa) / wa, wy * (cy - cya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)], dim=-1
    )


def decode(deltas: torch.Tensor, anchors: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """The boxes [..., 4] that ``deltas`` [..., 4] make of ``anchors`` [..., 4] (the inverse of `encode`)."""
    wx, wy, ww, wh = weights
    cxa, cya, wa, ha = _center_size(anchors)
    cx = deltas[..., 0] / wx * wa + cxa
    cy = deltas[..., 1] / wy * ha + cya
    w = torch.exp((deltas[..., 2] / ww).clamp(max=MAX_LOG_SCALE)) * wa
    h = torch.exp((deltas[..., 3] / wh).clamp(max=MAX_LOG_SCALE)) * ha
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
