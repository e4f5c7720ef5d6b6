"""IResNet (insightface arcface_torch), the face-recognition baseline people migrate from: 112x112 input, a
512-d embedding from the flatten ("E") head.

Not an MBConv network, so it has its own module class, with the same interface as `EfficientNet` where it
matters: ``forward_features`` (the final map, 512 x 7 x 7 at 112 px), ``forward_head``, ``feature_info``,
``preprocessing``, ``name``, ``num_classes`` / ``reset_classifier``. Layout, as in
shared/reference/recognition.md: conv1 -> bn1 -> PReLU -> layer1..4 (IBasicBlock: BN -> conv3x3 -> BN -> PReLU
-> conv3x3(stride) -> BN, + shortcut) -> E head (bn2 -> dropout -> fc -> features BN). ``num_classes=0``
returns the embedding, which is the reference model (r50: 43,590,848 parameters); ``num_classes > 0`` adds a
linear classifier on the embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from effnet.models.embedding import BN_EPS, FlattenHead
from effnet.models.families.iresnet import WIDTHS, IResNetConfig
from effnet.models.network import FeatureInfo, FeatureInfoList


class IBasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels, eps=BN_EPS)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """An IResNet built from an `IResNetConfig`; use ``effnet.create_model("iresnet50")``."""

    def __init__(
        self,
        config: IResNetConfig,
        num_classes: int = 0,
        in_chans: int = 3,
        drop_rate: float | None = None,
        input_size: int | tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 gives the embedding), got {num_classes}")
        self.config = config
        self.name = config.name
        self.preprocessing = (
            config.preprocessing.with_size(input_size) if input_size is not None else config.preprocessing
        )
        self.in_chans = in_chans
        self.features_only = False
        self.drop_rate = 0.0 if drop_rate is None else drop_rate
        self.conv1 = nn.Conv2d(in_chans, WIDTHS[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0], eps=BN_EPS)
        self.prelu = nn.PReLU(WIDTHS[0])
        channels, reduction, info = WIDTHS[0], 1, []
        for index, (width, repeats) in enumerate(zip(WIDTHS, config.layers, strict=True)):
            blocks = [
                IBasicBlock(channels if i == 0 else width, width, 2 if i == 0 else 1) for i in range(repeats)
            ]
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            channels, reduction = width, reduction * 2
            info.append(FeatureInfo(f"layer{index + 1}", width, reduction))
        self.feature_info = FeatureInfoList(info)
        height, width = self.preprocessing.input_size
        self.map_size = (-(-height // 16), -(-width // 16))
        self.head: nn.Module = FlattenHead(channels, config.embedding_dim, self.map_size, self.drop_rate)
        self.num_features = config.embedding_dim
        self._init_weights()
        self.reset_classifier(num_classes)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0, 0.1)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh linear classifier on the embedding for ``num_classes`` (0 removes it)."""
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def drop_embedding_head(self) -> None:
        """Remove the E head and classifier (`effnet.create_embedder` puts its own head on the body)."""
        self.head = nn.Identity()
        self.reset_classifier(0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature map (512 x 7 x 7 at 112 px), before the E head."""
        x = self.prelu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        embedding = self.head(x)
        return embedding if pre_logits else self.classifier(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"{self.name} expects a batch of shape (N, {self.in_chans}, H, W), got {tuple(x.shape)}"
            )
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"name={self.name}, num_classes={self.num_classes}"
