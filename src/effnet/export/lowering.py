"""Export-only rewrites that let an int8 file run hard-swish and squeeze-excite in integer arithmetic.

Each rewrite changes how a function is written, never the function (outputs agree to float rounding), and is
applied to the copy of the model that is exported (`effnet.export.torch_model.export_copy`), only for int8.
Measured in benchmarks/int8_families.py (int8 / float latency, batch 1, 224 px):

- LiteRT: litert-torch turns ``F.hardswish`` (and ``x * relu6(x + 3) / 6``) into the HARD_SWISH builtin, and
  the XNNPACK delegate does not take its int8 form: each one ran in LiteRT's own kernel and split the
  delegated graph (MobileNetV3-Large: 21 HARD_SWISH, 22 partitions, int8 1.4x the float latency). Written
  as ``(x / 6) * relu6(x + 3)`` the converter keeps MUL, ADD + RELU6 and MUL, all delegated in int8: one
  partition, 0.65x float.
- ONNX Runtime: ``x.mean((2, 3))`` exports as ReduceMean, which ORT's quantizer leaves in float between
  DequantizeLinear / QuantizeLinear (B0: 15% of the int8 run time). Written as an average pool over the whole
  map it exports as AveragePool, which ORT runs as QLinearAveragePool (B0: int8 0.89x -> 0.73x float).
  LiteRT keeps the mean: its int8 AVERAGE_POOL_2D of a whole feature map is not delegated to XNNPACK.
  ORT leaves HardSigmoid / HardSwish in float too; the hard-swish form above runs as QLinearMul /
  QLinearAdd instead (about 2% faster on MobileNetV3-Large).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effnet.models.layers import SqueezeExcite

ENGINES = ("onnx", "tflite")


class DecomposedHardSwish(nn.Module):
    """hard-swish written ``(x / 6) * relu6(x + 3)``: three ops each engine runs in int8 (the converters
    fuse the usual forms back into a HARD_SWISH / HardSwish op, which they do not)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1.0 / 6.0)) * F.relu6(x + 3.0)


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
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Hardswish):
                setattr(module, name, DecomposedHardSwish())
            elif isinstance(child, nn.Hardsigmoid):
                setattr(module, name, DecomposedHardSigmoid())
        if engine == "onnx" and type(module) is SqueezeExcite:
            module.__class__ = AveragePoolSqueezeExcite  # same parameters, only forward differs
    return network
