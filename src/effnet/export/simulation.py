"""A PyTorch simulation of the integer arithmetic of effnet's int8 and int16 files, for the methods that
need to see it while they change a model: quantization-aware fine-tuning (`effnet.export.qat`) and
activation-aware GPTQ rounding (`effnet.export.rounding`).

It follows what ONNX Runtime's QDQ quantizer and ai-edge-quantizer build, so that what those methods see is
what the file computes:

- weights: int8, symmetric, one scale per output channel (max |w| / 127), taken *after* the following
  BatchNorm is folded in (the exporters fold it first): a conv's weight is fake-quantized as
  ``fq(w * k) / k`` with k the BatchNorm's per-channel gain, so that conv + BN(eval) equals the folded
  conv with quantized weights;
- activations: asymmetric 8-bit (16-bit in int16 mode), one range per tensor from min / max over the
  calibration images, at the outputs the exporters quantize: each conv + BN + activation, each residual
  sum, each squeeze-excite product, the inputs of the other convolutions and fully-connected layers, and
  the network's output; the network's input gets the fixed range of a normalized image.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from effnet.export.quantization import MIN_ACTIVATION_RANGE
from effnet.export.torch_model import input_range
from effnet.models.blocks import Block
from effnet.models.layers import ConvBnAct, SqueezeExcite

WEIGHT_LEVELS = 127  # symmetric int8 weights: -127..127, as both exporters write them


def folded_gain(bn: nn.modules.batchnorm._BatchNorm | None, channels: int) -> torch.Tensor:
    """The per-channel factor a BatchNorm multiplies its input by (in eval mode), which the exporters fold
    into the layer before it: ones where no BatchNorm follows; never exactly zero."""
    if bn is None:
        return torch.ones(channels)
    gain = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        gain = gain * bn.weight
    return torch.where(gain.abs() < 1e-12, torch.full_like(gain, 1e-12), gain)


def weight_layers(network: nn.Module) -> Iterator[tuple[nn.Module, nn.modules.batchnorm._BatchNorm | None]]:
    """Every Conv2d / Linear with the BatchNorm that directly follows it (the exporters fold it in), or None.

    "Directly follows" is read from the module order inside each parent: a BatchNorm registered right
    after a conv / linear with matching channels is applied to its output in every effnet module
    (ConvBnAct, the embedding heads); a BatchNorm before a layer (the flatten head's bn2) is not folded.
    """
    for parent in network.modules():
        children = list(parent.children())
        for position, layer in enumerate(children):
            if not isinstance(layer, (nn.Conv2d, nn.Linear)):
                continue
            following = children[position + 1] if position + 1 < len(children) else None
            out_channels = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            if (
                isinstance(following, nn.modules.batchnorm._BatchNorm)
                and following.num_features == out_channels
            ):
                yield layer, following
            else:
                yield layer, None


_QUANTIZED = "_effnet_fake_quantized"  # set on a tensor once it went through an activation quantizer


class _ActivationQuantizer:
    """One quantized activation tensor: records min / max while calibrating, rounds to its grid after."""

    def __init__(self, levels: int, fixed: tuple[float, float] | None = None) -> None:
        self.levels = levels
        self.fixed = fixed
        self.low, self.high = fixed if fixed is not None else (math.inf, -math.inf)
        self.observing = False

    def reset(self) -> None:
        if self.fixed is None:
            self.low, self.high = math.inf, -math.inf

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            if self.fixed is None:
                self.low = min(self.low, float(x.detach().min()))
                self.high = max(self.high, float(x.detach().max()))
            return x
        if not math.isfinite(self.low):
            return x  # never calibrated (a branch the calibration images did not reach)
        low, high = min(self.low, 0.0), max(self.high, 0.0)  # zero must be exact, as in both exporters
        scale = max(high - low, MIN_ACTIVATION_RANGE) / self.levels
        zero_point = round(-low / scale)
        out = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, self.levels)
        setattr(out, _QUANTIZED, True)
        return out


class _FoldedWeightQuantizer(nn.Module):
    """A parametrization of a conv / linear weight: per-output-channel symmetric int8 rounding of the
    weight with the following BatchNorm's gain folded in (``bn`` None: no BatchNorm follows)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm | None) -> None:
        super().__init__()
        self.bn = [bn]  # a list: not registered as a submodule of the parametrization
        self.rounding = True

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.rounding:
            return weight
        shape = (-1,) + (1,) * (weight.dim() - 1)
        gain = folded_gain(self.bn[0], weight.shape[0]).to(weight)
        folded = weight * gain.reshape(shape)
        scale = folded.detach().abs().flatten(1).amax(1).clamp_min(1e-12) / WEIGHT_LEVELS
        zero_point = torch.zeros(len(scale), dtype=torch.int32, device=weight.device)
        rounded = torch.fake_quantize_per_channel_affine(
            folded, scale, zero_point, 0, -WEIGHT_LEVELS, WEIGHT_LEVELS
        )
        return rounded / gain.reshape(shape)


class QuantizationSimulation:
    """Fake-quantizes ``network`` in place (weights through parametrizations, activations through forward
    hooks); `remove` restores plain modules with the (fine-tuned) float weights."""

    def __init__(self, network: nn.Module, activation_bits: int = 8) -> None:
        self.network = network
        levels = 2**activation_bits - 1
        self._quantizers: list[_ActivationQuantizer] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._weights: list[nn.Module] = []

        def quantizer(fixed: tuple[float, float] | None = None) -> _ActivationQuantizer:
            self._quantizers.append(_ActivationQuantizer(levels, fixed))
            return self._quantizers[-1]

        self._on_input(network, quantizer(input_range(network.preprocessing)))
        self._on_output(network, quantizer())
        for module in network.modules():
            # a conv + BN + activation, a residual sum, a squeeze-excite product
            residual = isinstance(module, Block) and module.has_skip
            if residual or isinstance(module, (ConvBnAct, SqueezeExcite)):
                self._on_output(module, quantizer())
        inside_conv_bn_act = {id(m.conv) for m in network.modules() if isinstance(m, ConvBnAct)}
        for module in network.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and id(module) not in inside_conv_bn_act:
                self._on_input(module, quantizer())
        for layer, bn in weight_layers(network):
            parametrize.register_parametrization(layer, "weight", _FoldedWeightQuantizer(bn))
            self._weights.append(layer)

    def _on_input(self, module: nn.Module, quantize: _ActivationQuantizer) -> None:
        def hook(_module, inputs):
            x = inputs[0]
            return None if getattr(x, _QUANTIZED, False) else (quantize(x), *inputs[1:])

        self._handles.append(module.register_forward_pre_hook(hook))

    def _on_output(self, module: nn.Module, quantize: _ActivationQuantizer) -> None:
        self._handles.append(module.register_forward_hook(lambda _module, _inputs, out: quantize(out)))

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, batch_size: int) -> None:
        """Activation ranges: min / max of the float network (weights unrounded, as the exporters calibrate)
        over ``images``."""
        for quantize in self._quantizers:
            quantize.reset()
            quantize.observing = True
        try:
            self._round_weights(False)
            for start in range(0, len(images), batch_size):
                self.network(images[start : start + batch_size])
        finally:
            self._round_weights(True)
            for quantize in self._quantizers:
                quantize.observing = False

    def _round_weights(self, rounding: bool) -> None:
        for layer in self._weights:
            layer.parametrizations.weight[0].rounding = rounding

    def float_weight(self, layer: nn.Module) -> torch.Tensor:
        """The float weight of ``layer`` (one of the network's conv / linear layers) under its rounding: write
        to it to change what the layer computes."""
        return layer.parametrizations.weight.original

    def remove(self) -> nn.Module:
        for handle in self._handles:
            handle.remove()
        for layer in self._weights:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        return self.network
