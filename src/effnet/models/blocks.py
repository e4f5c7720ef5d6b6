"""The blocks of the family: MBConv (inverted residual, and its depthwise-separable form), Fused-MBConv,
and a plain conv block. Each one is built from one concrete row of a stage table."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effnet.models.layers import BatchNormConfig, ConvBnAct, DropPath, SqueezeExcite
from effnet.models.spec import ArchSpec, BlockSpec, round_channels


@dataclass(frozen=True)
class BlockContext:
    """What a block needs from its network besides its own row."""

    act: str
    norm: BatchNormConfig
    padding: str
    se_gate: str
    se_act: str | None
    se_from_expanded: bool
    divisor: int

    @classmethod
    def from_arch(cls, arch: ArchSpec, padding: str) -> BlockContext:
        return cls(
            act=arch.act,
            norm=BatchNormConfig(arch.bn_eps, arch.bn_momentum),
            padding=padding,
            se_gate=arch.se_gate,
            se_act=arch.se_act,
            se_from_expanded=arch.se_from_expanded,
            divisor=arch.divisor,
        )


class Block(nn.Module):
    """Shared residual logic: ``x + drop_path(branch(x))`` when the shape allows and the row asks for it."""

    def __init__(self, in_channels: int, row: BlockSpec, stride: int, drop_path: float) -> None:
        super().__init__()
        self.has_skip = row.skip and stride == 1 and in_channels == row.channels
        self.drop_path = DropPath(drop_path) if self.has_skip and drop_path > 0 else nn.Identity()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return x + self.drop_path(out) if self.has_skip else out


def _squeeze_excite(row: BlockSpec, in_channels: int, mid_channels: int, ctx: BlockContext, act: str):
    if row.se <= 0:
        return nn.Identity()
    if ctx.se_from_expanded:
        reduced = round_channels(mid_channels * row.se, divisor=ctx.divisor)
    else:
        # EfficientNet squeezes from the block input, not the expanded width (as in the TF reference).
        reduced = max(1, int(in_channels * row.se))
    return SqueezeExcite(mid_channels, reduced, act=ctx.se_act or act, gate=ctx.se_gate)


class MBConv(Block):
    """Inverted residual: 1x1 expansion, kxk depthwise, squeeze-excite, linear 1x1 projection.

    With op "ds" there is no expansion (MBConv1, the depthwise-separable block of MobileNetV1/V2/V3).
    """

    def __init__(self, in_channels: int, row: BlockSpec, stride: int, ctx: BlockContext, drop_path=0.0):
        super().__init__(in_channels, row, stride, drop_path)
        act = row.act or ctx.act
        if row.op == "ds":
            mid = in_channels
            self.expand = nn.Identity()
        else:
            mid = round_channels(in_channels * row.expand, divisor=ctx.divisor)
            self.expand = ConvBnAct(in_channels, mid, 1, act=act, norm=ctx.norm, padding=ctx.padding)
        self.dw = ConvBnAct(
            mid, mid, row.kernel, stride, groups=mid, act=act, norm=ctx.norm, padding=ctx.padding
        )
        self.se = _squeeze_excite(row, in_channels, mid, ctx, act)
        project_act = act if row.pw_act else None
        self.project = ConvBnAct(mid, row.channels, 1, act=project_act, norm=ctx.norm, padding=ctx.padding)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.se(self.dw(self.expand(x))))


class FusedMBConv(Block):
    """Fused-MBConv (EfficientNetV2): the expansion and depthwise convs fused into one full kxk conv,
    which runs faster than depthwise on accelerators at high resolution; then a linear 1x1 projection."""

    def __init__(self, in_channels: int, row: BlockSpec, stride: int, ctx: BlockContext, drop_path=0.0):
        super().__init__(in_channels, row, stride, drop_path)
        act = row.act or ctx.act
        mid = round_channels(in_channels * row.expand, divisor=ctx.divisor)
        self.expand = ConvBnAct(
            in_channels, mid, row.kernel, stride, act=act, norm=ctx.norm, padding=ctx.padding
        )
        self.se = _squeeze_excite(row, in_channels, mid, ctx, act)
        self.project = ConvBnAct(mid, row.channels, 1, act=None, norm=ctx.norm, padding=ctx.padding)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.se(self.expand(x)))


class ConvBlock(Block):
    """A plain kxk conv + BN + act, with a residual where the shape allows (EfficientNetV2's first stage,
    MobileNetV3's last 1x1 stage)."""

    def __init__(self, in_channels: int, row: BlockSpec, stride: int, ctx: BlockContext, drop_path=0.0):
        super().__init__(in_channels, row, stride, drop_path)
        act = row.act or ctx.act
        self.conv = ConvBnAct(
            in_channels, row.channels, row.kernel, stride, act=act, norm=ctx.norm, padding=ctx.padding
        )

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


BLOCKS: dict[str, type[Block]] = {"ds": MBConv, "ir": MBConv, "fused": FusedMBConv, "conv": ConvBlock}


def build_block(in_channels: int, row: BlockSpec, stride: int, ctx: BlockContext, drop_path: float) -> Block:
    return BLOCKS[row.op](in_channels, row, stride, ctx, drop_path)
