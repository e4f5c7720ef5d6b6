"""EfficientDet's BiFPN neck and its shared class / box nets (arXiv:1911.09070, Sec. 3 and Fig. 3; the
layer layout of automl efficientdet/tf2/efficientdet_keras.py)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from effnet.models.layers import BatchNormConfig, make_activation

# TF BatchNorm of automl: decay 0.99, epsilon 1e-3
NORM = BatchNormConfig(eps=1e-3, momentum=0.01)
PRIOR_PROBABILITY = 0.01  # focal loss paper (Lin et al., 2017): start every class score at 1%


def bifpn_nodes(min_level: int, max_level: int) -> list[tuple[int, tuple[int, ...]]]:
    """The nodes of one BiFPN layer as (level, ids of its inputs). Ids 0..L-1 are the layer's inputs from
    the finest level up; each new node takes the next id. For P3-P7:

        P7 (4) ---------------------- P7" (12)
        P6 (3) ------ P6' (5) ------- P6" (11)
        P5 (2) ------ P5' (6) ------- P5" (10)
        P4 (1) ------ P4' (7) ------- P4" (9)
        P3 (0) ---------------------- P3" (8)

    top-down: P6' = (P6, P7), P5' = (P5, P6'), ... P3" = (P3, P4'); bottom-up: P4" = (P4, P4', P3"), ...,
    P7" = (P7, P6"): every level's inputs so far plus the level below's newest node.
    """
    ids = {level: [level - min_level] for level in range(min_level, max_level + 1)}
    next_id = max_level - min_level + 1
    nodes = []

    def add(level: int, inputs: list[int]) -> None:
        nonlocal next_id
        nodes.append((level, tuple(inputs)))
        ids[level].append(next_id)
        next_id += 1

    for level in range(max_level - 1, min_level - 1, -1):
        add(level, [ids[level][-1], ids[level + 1][-1]])
    for level in range(min_level + 1, max_level + 1):
        add(level, [*ids[level], ids[level - 1][-1]])
    return nodes


class SeparableConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 with a bias (Keras SeparableConv2D, depth multiplier 1)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def max_pool_half(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-2 max-pool to ceil(size / 2), as automl downsamples between levels."""
    return F.max_pool2d(x, 3, 2, padding=1)


class Resample(nn.Module):
    """Brings one input to a node's width (1x1 conv + BN, only where the widths differ) and size (max-pool
    down, nearest-neighbour up)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.project = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), NORM(out_channels))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.project(x)
        if x.shape[-1] > size[-1]:
            return max_pool_half(x)
        if x.shape[-1] < size[-1]:
            # "nearest-exact" (half-pixel centres), as TF's resize and LiteRT's RESIZE_NEAREST_NEIGHBOR do:
            # torch's "nearest" picks other pixels where the scale is not whole (P7 3 -> P6 5 at 320 px),
            # so a .tflite file of the detector would compute another network
            return F.interpolate(x, size=size, mode="nearest-exact")
        return x


class FusionNode(nn.Module):
    """One BiFPN node: resample its inputs, add them ("sum", or "fastattn": weights relu(w_i) / (sum + 1e-4),
    the paper's fast normalized fusion), then activation, separable conv and BN."""

    def __init__(self, in_channels: list[int], channels: int, fusion: str, act: str) -> None:
        super().__init__()
        self.resample = nn.ModuleList(Resample(c, channels) for c in in_channels)
        self.fusion = fusion
        if fusion == "fastattn":
            self.edge_weights = nn.Parameter(torch.ones(len(in_channels)))
        elif fusion != "sum":
            raise ValueError(f"unknown BiFPN fusion {fusion!r}; choose 'sum' or 'fastattn'")
        self.act = make_activation(act)
        self.conv = SeparableConv(channels, channels)
        self.bn = NORM(channels)

    def forward(self, inputs: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        maps = [resample(x, size) for resample, x in zip(self.resample, inputs, strict=True)]
        if self.fusion == "fastattn":
            weights = torch.relu(self.edge_weights)
            weights = weights / (weights.sum() + 1e-4)
            maps = [m * w for m, w in zip(maps, weights, strict=True)]
        fused = maps[0]
        for m in maps[1:]:
            fused = fused + m
        return self.bn(self.conv(self.act(fused)))


class BiFPNLayer(nn.Module):
    """One BiFPN layer: the nodes of `bifpn_nodes`; returns each level's newest node, finest first."""

    def __init__(self, in_channels: list[int], channels: int, min_level: int, fusion: str, act: str) -> None:
        super().__init__()
        self.min_level = min_level
        self.graph = bifpn_nodes(min_level, min_level + len(in_channels) - 1)
        widths = list(in_channels)
        self.nodes = nn.ModuleList()
        for _, inputs in self.graph:
            self.nodes.append(FusionNode([widths[i] for i in inputs], channels, fusion, act))
            widths.append(channels)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        maps = list(features)
        newest = list(range(len(features)))  # id of each level's newest node
        for node, (level, inputs) in zip(self.nodes, self.graph, strict=True):
            index = level - self.min_level
            maps.append(node([maps[i] for i in inputs], features[index].shape[-2:]))
            newest[index] = len(maps) - 1
        return [maps[i] for i in newest]


class BiFPN(nn.Module):
    """P3-P5 from the backbone, P6 = max-pool(1x1 conv + BN of P5), P7 = max-pool(P6), then ``repeats``
    BiFPN layers of width ``channels``."""

    def __init__(
        self, in_channels: list[int], channels: int, repeats: int, min_level: int, max_level: int, fusion, act
    ) -> None:
        super().__init__()
        self.extra = nn.ModuleList()
        width = in_channels[-1]
        for _ in range(max_level - min_level + 1 - len(in_channels)):
            self.extra.append(Resample(width, channels))
            width = channels
        widths = list(in_channels) + [channels] * len(self.extra)
        self.layers = nn.ModuleList()
        for _ in range(repeats):
            self.layers.append(BiFPNLayer(widths, channels, min_level, fusion, act))
            widths = [channels] * len(widths)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        maps = list(features)
        for extra in self.extra:
            last = maps[-1]
            maps.append(extra(last, ((last.shape[-2] - 1) // 2 + 1, (last.shape[-1] - 1) // 2 + 1)))
        for layer in self.layers:
            maps = layer(maps)
        return maps


class PredictionNet(nn.Module):
    """EfficientDet's class or box net: ``repeats`` x (separable conv shared by all levels, BN of its own
    per level, activation), then a separable conv predicting ``outputs`` values per location."""

    def __init__(self, channels: int, outputs: int, repeats: int, num_levels: int, act: str, bias: float):
        super().__init__()
        self.convs = nn.ModuleList(SeparableConv(channels, channels) for _ in range(repeats))
        self.norms = nn.ModuleList(
            nn.ModuleList(NORM(channels) for _ in range(num_levels)) for _ in range(repeats)
        )
        self.act = make_activation(act)
        self.predict = SeparableConv(channels, outputs)
        nn.init.constant_(self.predict.pointwise.bias, bias)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for level, x in enumerate(features):
            for conv, norms in zip(self.convs, self.norms, strict=True):
                x = self.act(norms[level](conv(x)))
            out.append(self.predict(x))
        return out


class EfficientDetHead(nn.Module):
    """The class net (``num_classes`` x anchors outputs, biased to the 1% prior) and the box net."""

    def __init__(self, channels: int, num_classes: int, anchors: int, repeats: int, levels: int, act: str):
        super().__init__()
        prior = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
        self.class_net = PredictionNet(channels, num_classes * anchors, repeats, levels, act, prior)
        self.box_net = PredictionNet(channels, 4 * anchors, repeats, levels, act, 0.0)

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.class_net(features), self.box_net(features)
