"""Anchor boxes of a detector at its input size, in the order its head emits predictions: levels from the
finest (stride 8 or 16) to the coarsest, locations row-major (y, then x), then the anchors of a location."""

from __future__ import annotations

import math

import torch
from torch import nn

from effnet.models.detection.spec import DetectorSpec, GridAnchors, SSDAnchors, level_sizes


def feature_sizes(spec: DetectorSpec, input_size: int) -> list[int]:
    """The side of each map the head predicts on, for a square ``input_size`` image."""
    first_stride = 2**spec.min_level if spec.architecture == "efficientdet" else 16
    return level_sizes(input_size, spec.num_levels, first_stride)


def _centers(size: int, input_size: int) -> torch.Tensor:
    """(y, x) centers of a size x size grid spread over the image, row-major: [size * size, 2]."""
    step = input_size / size  # not 2**level where the image is not a multiple of it, as in automl
    line = (torch.arange(size, dtype=torch.float64) + 0.5) * step
    y, x = torch.meshgrid(line, line, indexing="ij")
    return torch.stack([y.reshape(-1), x.reshape(-1)], dim=1)


def grid_anchor_shapes(anchors: GridAnchors, stride: float) -> list[tuple[float, float]]:
    """(width, height) of the anchors of one location, scale-major then aspect ratio (automl anchors.py)."""
    shapes = []
    for octave in range(anchors.num_scales):
        base = anchors.scale * stride * 2 ** (octave / anchors.num_scales)
        for ratio in anchors.aspect_ratios:
            shapes.append((base * math.sqrt(ratio), base / math.sqrt(ratio)))
    return shapes


def ssd_anchor_shapes(anchors: SSDAnchors, level: int, num_levels: int, input_size: int):
    """(width, height) of the default boxes of one location of ``level``: s_k, sqrt(s_k * s_k+1), then for
    each aspect ratio r the boxes r and 1/r; sides clipped to the image (torchvision DefaultBoxGenerator)."""
    scales = anchors.scales(num_levels)
    s_k = scales[level]
    pairs = [(s_k, s_k), (math.sqrt(s_k * scales[level + 1]),) * 2]
    for ratio in anchors.aspect_ratios:
        root = math.sqrt(ratio)
        pairs += [(s_k * root, s_k / root), (s_k / root, s_k * root)]
    return [(min(w, 1.0) * input_size, min(h, 1.0) * input_size) for w, h in pairs]


def _level_shapes(spec: DetectorSpec, input_size: int) -> list[list[tuple[float, float]]]:
    """(width, height) of the anchors of one location, per level."""
    sizes = feature_sizes(spec, input_size)
    if isinstance(spec.anchors, GridAnchors):
        return [grid_anchor_shapes(spec.anchors, input_size / size) for size in sizes]
    return [ssd_anchor_shapes(spec.anchors, index, len(sizes), input_size) for index in range(len(sizes))]


def anchor_boxes(spec: DetectorSpec, input_size: int) -> torch.Tensor:
    """All anchors of ``spec`` at a square ``input_size``: float32 [A, 4] (xmin, ymin, xmax, ymax) pixels."""
    levels = []
    sizes = feature_sizes(spec, input_size)
    for size, shapes in zip(sizes, _level_shapes(spec, input_size), strict=True):
        wh = torch.tensor(shapes, dtype=torch.float64)  # [K, 2]
        centers = _centers(size, input_size)[:, None, :].flip(-1)  # [L, 1, 2] as (x, y)
        boxes = torch.cat([centers - wh / 2, centers + wh / 2], dim=-1)  # [L, K, 4]
        levels.append(boxes.reshape(-1, 4))
    return torch.cat(levels).float()


class AnchorGrid(nn.Module):
    """The anchors of `anchor_boxes`, computed from their indices: ``forward(index)`` ([...] int64) gives
    ``anchor_boxes(spec, input_size)[index]`` ([..., 4] float32, to float32 rounding). It holds a few
    numbers per level instead of the [A, 4] table, so a detector file computes the boxes of its candidates
    instead of storing every anchor."""

    def __init__(self, spec: DetectorSpec, input_size: int) -> None:
        super().__init__()
        sizes = feature_sizes(spec, input_size)
        self.per_location = spec.anchors.per_location
        counts = [self.per_location * size * size for size in sizes]
        starts = [sum(counts[:level]) for level in range(len(sizes))]
        shapes = [pair for level in _level_shapes(spec, input_size) for pair in level]
        self.register_buffer("starts", torch.tensor(starts, dtype=torch.float64), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.float64), persistent=False)
        steps = torch.tensor([input_size / size for size in sizes], dtype=torch.float64)
        self.register_buffer("steps", steps, persistent=False)
        self.register_buffer("shapes", torch.tensor(shapes, dtype=torch.float64), persistent=False)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        # float arithmetic on integers below 2**24 is exact (and converts on every engine)
        position = index.float()
        starts, sizes, steps = self.starts.float(), self.sizes.float(), self.steps.float()
        level = (position[..., None] >= starts[1:]).float().sum(-1).long()  # the last level it reaches
        local = position - starts[level]
        location = torch.floor((local + 0.5) / self.per_location)
        shape = (local - location * self.per_location).long() + level * self.per_location
        side = sizes[level]
        row = torch.floor((location + 0.5) / side)
        column = location - row * side
        center = torch.stack([column + 0.5, row + 0.5], dim=-1) * steps[level][..., None]
        half = self.shapes.float()[shape] / 2
        return torch.cat([center - half, center + half], dim=-1)


def num_anchors(spec: DetectorSpec, input_size: int | None = None) -> int:
    sizes = feature_sizes(spec, input_size or spec.input_size)
    return spec.anchors.per_location * sum(s * s for s in sizes)
