"""SSDLite (MobileNetV2 paper, arXiv:1801.04381, Sec. 6.2): SSD with every 3x3 conv of its extra layers and
predictors replaced by a depthwise-separable one. Layout of torchvision detection/ssdlite.py: the first map
is the expansion inside the backbone's last stride-2 block (stride 16), the second the backbone's final map
(stride 32), then four extra blocks each halve the size."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from effnet.models.blocks import MBConv
from effnet.models.layers import BatchNormConfig, ConvBnAct
from effnet.models.spec import ModelConfig

# torchvision's SSDLite BatchNorm: eps 1e-3, momentum 0.03
NORM = BatchNormConfig(eps=1e-3, momentum=0.03)
PRIOR_PROBABILITY = 0.01


def reduce_tail(config: ModelConfig) -> ModelConfig:
    """The backbone with its last inverted-residual stage and final 1x1 conv at half width (MobileNetV3 paper
    Sec. 6.3: the detection backbone keeps C5 smaller; torchvision's ``reduced_tail``)."""
    stages = list(config.arch.stages)
    last_ir = max(i for i, stage in enumerate(stages) if stage[0].op == "ir")
    for index in range(last_ir, len(stages)):
        stages[index] = tuple(replace(row, channels=row.channels // 2) for row in stages[index])
    arch = replace(config.arch, stages=tuple(stages))
    return replace(config, name=f"{config.name}_reduced_tail", arch=arch)


def split_stage(stages: nn.ModuleList) -> int:
    """Index of the stage that starts with the last stride-2 block: SSDLite's first map is that block's
    expansion (its input is at stride 16; the expansion is the widest map there)."""
    for index in range(len(stages) - 1, -1, -1):
        block = stages[index][0]
        if isinstance(block, MBConv) and block.dw.conv.stride[0] == 2:
            if isinstance(block.expand, nn.Identity):
                break
            return index
    raise ValueError("SSDLite needs a backbone whose last stride-2 block is an inverted residual")


def extra_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 to half the width, depthwise 3x3 stride 2, 1x1 to ``out_channels``, each with BN and ReLU6."""
    mid = out_channels // 2
    return nn.Sequential(
        ConvBnAct(in_channels, mid, 1, act="relu6", norm=NORM),
        ConvBnAct(mid, mid, 3, 2, groups=mid, act="relu6", norm=NORM),
        ConvBnAct(mid, out_channels, 1, act="relu6", norm=NORM),
    )


class SSDLiteExtras(nn.Module):
    """The extra blocks after the backbone: each map is the previous one halved."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for width in widths:
            self.blocks.append(extra_block(in_channels, width))
            in_channels = width

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        maps = list(features)
        for block in self.blocks:
            maps.append(block(maps[-1]))
        return maps


def predictor(in_channels: int, outputs: int) -> nn.Sequential:
    """Depthwise 3x3 + BN + ReLU6, then a 1x1 conv with bias."""
    return nn.Sequential(
        ConvBnAct(in_channels, in_channels, 3, groups=in_channels, act="relu6", norm=NORM),
        nn.Conv2d(in_channels, outputs, 1),
    )


class SSDLiteHead(nn.Module):
    """A class and a box predictor per map (no weights shared between maps)."""

    def __init__(self, in_channels: list[int], num_classes: int, anchors: int) -> None:
        super().__init__()
        self.class_net = nn.ModuleList(predictor(c, num_classes * anchors) for c in in_channels)
        self.box_net = nn.ModuleList(predictor(c, 4 * anchors) for c in in_channels)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.03)  # torchvision's SSDLite init
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # per-class sigmoid scores start at the 1% prior (focal loss paper), not at 50%
        prior = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
        for block in self.class_net:
            nn.init.constant_(block[1].bias, prior)

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        classes = [net(x) for net, x in zip(self.class_net, features, strict=True)]
        boxes = [net(x) for net, x in zip(self.box_net, features, strict=True)]
        return classes, boxes
