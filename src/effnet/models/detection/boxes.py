"""Boxes as float [K, 4] (xmin, ymin, xmax, ymax) in pixels: IoU, and the center-size coding of boxes
relative to anchors that detectors regress (Faster R-CNN, Ren et al., 2015, eq. 2)."""

from __future__ import annotations

import math

import torch

# exp() of a larger log-ratio would make a box over 62x its anchor: clamped, as in torchvision's BoxCoder
MAX_LOG_RATIO = math.log(1000.0 / 16)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every box of ``a`` [M, 4] with every box of ``b`` [N, 4]: [M, N]
    (0 where both boxes are empty)."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), 0.0)


def _center_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * width, boxes[..., 1] + 0.5 * height, width, height


def encode(boxes: torch.Tensor, anchors: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Deltas (dx, dy, dw, dh) of ``boxes`` relative to ``anchors`` (the same shape [..., 4]):
    dx = wx (cx - cxa) / wa, dy = wy (cy - cya) / ha, dw = ww log(w / wa), dh = wh log(h / ha)."""
    wx, wy, ww, wh = weights
    cx, cy, w, h = _center_size(boxes)
    cxa, cya, wa, ha = _center_size(anchors)
    return torch.stack(
        [wx * (cx - cxa) / wa, wy * (cy - cya) / ha, ww * torch.log(w / wa), wh * torch.log(h / ha)], dim=-1
    )


def decode(deltas: torch.Tensor, anchors: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Boxes (xmin, ymin, xmax, ymax) from ``deltas`` relative to ``anchors``: the inverse of `encode`, with
    dw / ww and dh / wh clamped at log(1000 / 16)."""
    wx, wy, ww, wh = weights
    cxa, cya, wa, ha = _center_size(anchors)
    cx = deltas[..., 0] / wx * wa + cxa
    cy = deltas[..., 1] / wy * ha + cya
    w = torch.exp((deltas[..., 2] / ww).clamp(max=MAX_LOG_RATIO)) * wa
    h = torch.exp((deltas[..., 3] / wh).clamp(max=MAX_LOG_RATIO)) * ha
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
