"""The two segmentation heads: LR-ASPP (MobileNetV3 paper Sec. 6.3) and the mobile DeepLabV3 ASPP
(MobileNetV2 paper Sec. 6.3). Each takes backbone maps and returns class logits at the finest map's size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effnet.models.layers import ConvBnAct


class LRASPPHead(nn.Module):
    """Lite R-ASPP: ``x = relu(bn(conv1x1(high))) * sigmoid(conv1x1(avgpool(high)))``, upsampled to the
    low-level map; logits = ``classify_low(low) + classify_high(x)``.

    The paper pools with a large 49x49 kernel at stride (16, 20), trained at 1024x2048; torchvision (and
    this module) use global pooling, which is the same at the input sizes a phone uses."""

    def __init__(self, low_channels: int, high_channels: int, num_classes: int, channels: int = 128) -> None:
        super().__init__()
        self.cbr = ConvBnAct(high_channels, channels, 1, act="relu")
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, channels, 1, bias=False), nn.Sigmoid()
        )
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabV3, arXiv:1706.05587, Sec. 3.3): a 1x1 conv branch, one 3x3
    branch per atrous rate, and an image-pooling branch, each conv + BN + ReLU, concatenated and projected
    by a 1x1 conv. With no rates it is the MobileNetV2 paper's mobile head."""

    def __init__(self, in_channels: int, channels: int = 256, rates: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.branches = nn.ModuleList([ConvBnAct(in_channels, channels, 1)])
        for rate in rates:
            branch = ConvBnAct(in_channels, channels, 3)
            branch.conv.dilation, branch.conv.padding = (rate, rate), (rate, rate)
            self.branches.append(branch)
        self.pool = ConvBnAct(in_channels, channels, 1)
        self.project = ConvBnAct(channels * (len(rates) + 2), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [branch(x) for branch in self.branches]
        pooled = self.pool(x.mean((2, 3), keepdim=True))
        # a 1x1 map upsampled is constant; a resize (not expand, which LiteRT's BROADCAST_TO refused to
        # prepare) converts to every engine
        outputs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return self.project(torch.cat(outputs, 1))


class DeepLabV3Head(nn.Module):
    """ASPP, dropout, then a 1x1 classifier with bias (DeepLab's ``logits`` layer)."""

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 256, rates: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, channels, rates)
        self.dropout = nn.Dropout(0.1)  # DeepLab's concat_projection keeps 90%
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.aspp(high)))
