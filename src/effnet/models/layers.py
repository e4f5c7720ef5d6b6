"""The small building pieces every block is made of: activations, convolutions with TF or PyTorch padding,
conv + BatchNorm + activation, squeeze-and-excitation and stochastic depth."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "hard_swish": nn.Hardswish,
    "hard_sigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
PADDINGS = ("symmetric", "same")


def make_activation(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow 'SAME' padding for one spatial dimension, as (before, after).

    TF pads so that the output has ceil(size / stride) positions and puts the odd pixel of padding at the
    end: a 3x3 stride-2 conv on 224 pixels pads 0 before and 1 after, where PyTorch's symmetric padding
    pads 1 and 1. Weights trained in TF see features shifted by a pixel under symmetric padding.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TFSameConv2d(nn.Conv2d):
    """A convolution with TF 'SAME' padding where it differs from symmetric padding (strided layers).

    The padding is computed from the input's shape. With a fixed input size (export, tracing) the shape is
    a constant, so the pad amounts are constants in the exported graph and the runtime folds them into the
    convolution: nothing is computed from shapes at run time.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = tf_same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        pad_w = tf_same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if any(pad_h) or any(pad_w):
            x = F.pad(x, (pad_w[0], pad_w[1], pad_h[0], pad_h[1]))
        return super().forward(x)


def create_conv2d(
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    bias: bool = False,
    padding: str = "symmetric",
) -> nn.Conv2d:
    """A 2-D convolution with 'symmetric' (PyTorch) or 'same' (TensorFlow) padding.

    Stride-1 convs with odd kernels pad the same way under both conventions, so only strided convs need
    the input-dependent TF padding; everything else keeps PyTorch's static padding.
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if padding == "same" and (stride > 1 or kernel % 2 == 0):
        return TFSameConv2d(in_channels, out_channels, kernel, stride, padding=0, groups=groups, bias=bias)
    return nn.Conv2d(
        in_channels, out_channels, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=bias
    )


class BatchNormConfig:
    """BatchNorm settings of a family. PyTorch momentum is 1 - TF decay (TF 0.99 -> 0.01)."""

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.eps = eps
        self.momentum = momentum

    def __call__(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)


class ConvBnAct(nn.Module):
    """Convolution, BatchNorm, then an optional activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
        norm: BatchNormConfig | None = None,
        padding: str = "symmetric",
    ) -> None:
        super().__init__()
        self.conv = create_conv2d(in_channels, out_channels, kernel, stride, groups, padding=padding)
        self.bn = (norm or BatchNormConfig())(out_channels)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, a 1x1 bottleneck, and a gate that rescales each channel."""

    def __init__(self, channels: int, reduced: int, act: str = "silu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = make_activation(act)
        self.expand = nn.Conv2d(reduced, channels, 1, bias=True)
        self.gate = make_activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        return x * self.gate(scale)


class DropPath(nn.Module):
    """Stochastic depth: in training, drop a residual branch for a random subset of samples."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate:.3f}"
