"""The one network class of the family. EfficientNet B0-B7, Lite, V2 and MobileNet V1/V2/V3 are all this
module built from different stage tables: stem -> stages of blocks -> head -> pool -> classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effnet.models.blocks import BlockContext, build_block
from effnet.models.layers import PADDINGS, ConvBnAct, make_activation
from effnet.models.spec import ModelConfig
from effnet.preprocessing import Preprocessing

MIN_INPUT_SIZE = 32  # five stride-2 stages: 32 px is the smallest input that keeps a 1x1 final map
FEATURE_REDUCTIONS = (2, 4, 8, 16, 32)


@dataclass(frozen=True)
class FeatureInfo:
    """One feature map that ``features_only`` returns."""

    module: str  # where it is taken: "stem" or "stages.N"
    channels: int
    reduction: int  # stride relative to the input


class FeatureInfoList(list):
    def channels(self) -> list[int]:
        return [f.channels for f in self]

    def reductions(self) -> list[int]:
        return [f.reduction for f in self]


class PooledHead(nn.Module):
    """MobileNetV3's head: a 1x1 conv with bias and an activation, applied after global pooling, which
    makes the 1280-wide layer cost 960 x 1280 MACs instead of 49 times that."""

    def __init__(self, in_channels: int, out_channels: int, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class EfficientNet(nn.Module):
    """A network of the EfficientNet / MobileNet family, built from a `ModelConfig`.

    Use `effnet.create_model(name, ...)` rather than this class directly.
    """

    def __init__(
        self,
        config: ModelConfig,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float | None = None,
        drop_path_rate: float | None = None,
        padding: str = "symmetric",
        features_only: bool = False,
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if in_chans < 1:
            raise ValueError(f"in_chans must be >= 1, got {in_chans}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 gives the pooled backbone), got {num_classes}")
        arch = config.arch
        self.config = config
        self.name = config.name
        self.preprocessing: Preprocessing = config.preprocessing
        self.in_chans = in_chans
        self.padding = padding
        self.features_only = features_only
        self.drop_rate = arch.dropout if drop_rate is None else drop_rate
        drop_path_rate = arch.drop_path if drop_path_rate is None else drop_path_rate

        ctx = BlockContext.from_arch(arch, padding)
        channels = arch.stem_width
        self.stem = ConvBnAct(in_chans, channels, 3, 2, act=arch.act, norm=ctx.norm, padding=padding)

        rows = arch.scaled_stages()
        total_blocks = sum(row.repeats for stage in rows for row in stage)
        points = [FeatureInfo("stem", channels, 2)]
        reduction, index = 2, 0
        self.stages = nn.ModuleList()
        for stage_index, stage in enumerate(rows):
            blocks = []
            for row in stage:
                for repeat in range(row.repeats):
                    stride = row.stride if repeat == 0 else 1
                    # stochastic depth grows linearly with depth, as in the reference implementations
                    rate = drop_path_rate * index / total_blocks
                    blocks.append(build_block(channels, row, stride, ctx, rate))
                    channels = row.channels
                    reduction *= stride
                    index += 1
            self.stages.append(nn.Sequential(*blocks))
            points.append(FeatureInfo(f"stages.{stage_index}", channels, reduction))
        # the deepest point at each stride is the feature map for that stride
        self.feature_info = FeatureInfoList(
            [next(p for p in reversed(points) if p.reduction == r) for r in FEATURE_REDUCTIONS]
        )

        self.head: nn.Module = nn.Identity()
        self.pooled_head: nn.Module = nn.Identity()
        self.classifier: nn.Module = nn.Identity()
        self.num_classes = 0
        if features_only:
            self.num_features = channels
        else:
            head_width = arch.head_width
            if head_width and arch.head == "conv_bn":
                self.head = ConvBnAct(channels, head_width, 1, act=arch.act, norm=ctx.norm, padding=padding)
            elif head_width:
                self.pooled_head = PooledHead(channels, head_width, arch.act)
            self.num_features = head_width or channels
            self.dropout = nn.Dropout(self.drop_rate)
            self.reset_classifier(num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / module.out_features**0.5
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0 removes it)."""
        if self.features_only:
            raise ValueError(f"{self.name} was built with features_only=True and has no classifier")
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for a batch this model cannot take (instead of a conv shape error)."""
        expected = f"(N, {self.in_chans}, H, W) with H, W >= {MIN_INPUT_SIZE}"
        if x.ndim != 4:
            raise ValueError(
                f"{self.name} expects a 4-D batch {expected}, got shape {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0)"
            )
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"{self.name} expects input of shape {expected}, got {tuple(x.shape)}; "
                f"convert the images to {self.in_chans} channels, or build the model with "
                f"in_chans={x.shape[1]}"
            )
        if min(x.shape[-2], x.shape[-1]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"{self.name} expects input of shape {expected}, got {tuple(x.shape)}; resize the images"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature map, before pooling."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool a feature map and classify it; ``pre_logits`` returns the pooled feature vector."""
        x = self.pooled_head(x.mean((2, 3), keepdim=True)).flatten(1)
        if pre_logits:
            return x
        return self.classifier(self.dropout(x))

    def forward_intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps at strides 2, 4, 8, 16 and 32 (see ``feature_info``)."""
        wanted = {f.module for f in self.feature_info}
        x = self.stem(x)
        out = [x] if "stem" in wanted else []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if f"stages.{index}" in wanted:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if not torch.compiler.is_compiling():
            self.check_input(x)
        if self.features_only:
            return self.forward_intermediates(x)
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"name={self.name}, padding={self.padding}, num_classes={self.num_classes}"
