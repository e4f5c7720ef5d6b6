"""Export-only rewrites that let an int8 file run hard-swish and squeeze-excite in integer arithmetic.

Each rewrite changes how a function is written, never the function (outputs agree to float rounding), and is
applied to the copy of the model that is exported (`effnet.export.torch_model.export_copy`), only for int8.
Measured in benchmarks/int8_families.py (int8 / float latency, batch 1, 224 px):

- LiteRT: litert-torch turns ``F.hardswish`` (and ``x * relu6(x + 3) / 6``) into the HARD_SWISH builtin, and
  the XNNPACK delegate does not take its int8 form: each one ran in LiteRT's own kernel and split the
  delegated graph (MobileNetV3-Large: 21 HARD_SWISH, 22 partitions, int8 1.45x the float latency at 1
  thread). Written as ``(x / 6) * relu6(x + 3)`` the converter keeps MUL, ADD + RELU6 and MUL, all
  delegated in int8: one partition, 0.64x float. Inside inverted residuals the 1/6 goes into the weights
  of the layers that read the activation, leaving ADD + RELU6 and MUL (MobileNetV3-Small: 0.74x -> 0.63x).
- ONNX Runtime: ``x.mean((2, 3))`` exports as ReduceMean, which ORT's quantizer leaves in float between
  DequantizeLinear / QuantizeLinear (B0: 15% of the int8 run time). Written as an average pool over the whole
  map it exports as AveragePool, which ORT runs as QLinearAveragePool (B0: int8 0.89x -> 0.73x float).
  LiteRT keeps the mean: its int8 AVERAGE_POOL_2D of a whole feature map is not delegated to XNNPACK.
  ORT leaves HardSigmoid / HardSwish in float too (between DequantizeLinear / QuantizeLinear: 25-30% of
  MobileNetV3's int8 run time); the forms above run as QLinearAdd / QLinearMul.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effnet.models.blocks import MBConv
from effnet.models.layers import ConvBnAct, SqueezeExcite

ENGINES = ("onnx", "tflite")


class DecomposedHardSwish(nn.Module):
    """hard-swish written ``(x / 6) * relu6(x + 3)``: three ops each engine runs in int8 (the converters
    fuse the usual forms back into a HARD_SWISH / HardSwish op, which they do not)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1.0 / 6.0)) * F.relu6(x + 3.0)


class ScaledHardSwish(nn.Module):
    """6 x hard-swish, ``x * relu6(x + 3)``: two int8 ops (ADD + RELU6, MUL) instead of three; the layers
    that read it divide their weights by 6 (`_fold_hard_swish_scale`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3.0)


class DecomposedHardSigmoid(nn.Module):
    """hard-sigmoid written ``relu6(x + 3) / 6``: ORT quantizes Add, Clip and Mul, not HardSigmoid
    (LiteRT gets the same ops from either form)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) * (1.0 / 6.0)


class AveragePoolSqueezeExcite(SqueezeExcite):
    """`SqueezeExcite` whose global pool is an average pool over the whole map (ONNX AveragePool, which
    ONNX Runtime quantizes) rather than a mean (ReduceMean, which it does not)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.avg_pool2d(x, tuple(x.shape[-2:]))
        scale = self.expand(self.act(self.reduce(scale)))
        return x * self.gate(scale)


def lower_for_int8(network: nn.Module, engine: str) -> nn.Module:
    """Rewrite ``network`` in place for an int8 ``engine`` file ("onnx" or "tflite"); returns it."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    for module in list(network.modules()):
        if isinstance(module, MBConv):
            _fold_hard_swish_scale(module)
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Hardswish):
                setattr(module, name, DecomposedHardSwish())
            elif isinstance(child, nn.Hardsigmoid):
                setattr(module, name, DecomposedHardSigmoid())
        if engine == "onnx" and type(module) is SqueezeExcite:
            module.__class__ = AveragePoolSqueezeExcite  # same parameters, only forward differs
    return network


def _fold_hard_swish_scale(block: MBConv) -> None:
    """Inside an inverted residual the expansion's hard-swish feeds only the depthwise conv, and the
    depthwise conv's only the squeeze-excite (its pool, then a conv; and the gate product) and the
    projection: all linear in it, so each can take ``6 x hard-swish`` with its conv weights divided by 6
    (biases stay: they are added after the weights). The hard-swish of the stem, the last stage and the head
    feed residual sums or the head and keep the three-op form."""
    expand_act = block.expand.act if isinstance(block.expand, ConvBnAct) else None
    if isinstance(expand_act, nn.Hardswish):
        block.expand.act = ScaledHardSwish()
        _divide_weights(block.dw.conv)
    if isinstance(block.dw.act, nn.Hardswish):
        block.dw.act = ScaledHardSwish()
        _divide_weights(block.project.conv)
        if isinstance(block.se, SqueezeExcite):
            _divide_weights(block.se.reduce)


@torch.no_grad()
def _divide_weights(conv: nn.Conv2d) -> None:
    conv.weight.mul_(1.0 / 6.0)
