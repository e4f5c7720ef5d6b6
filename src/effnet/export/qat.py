"""Quantization-aware fine-tuning: a few hundred steps that teach a float model to survive int8.

Post-training quantization rounds every weight and activation once and hopes the errors cancel. Where they
do not (a trained embedder's gdc or flatten head loses 1-2 points of cosine similarity to float in int8,
spread over every layer; see benchmarks/quantized_embeddings.py), the model itself can move to weights
whose rounded version behaves like the float original. `quantization_finetune` simulates the exporters'
integer arithmetic in PyTorch and fine-tunes a copy of the model through it, distilling from the
original: the copy's fake-quantized outputs are pulled towards the float model's (cosine similarity for an
embedding model, KL divergence for a classifier and, per pixel, a segmenter; for a detector, binary cross
entropy to the float model's class probabilities plus the squared difference of the box deltas). The
exporters then calibrate and quantize the fine-tuned copy as usual, without bias correction (it would pull the
layers back to the float model's means), and the exported file is compared with the *original* float model. On
trained digit embedders it took int8 gdc / flatten heads from 0.976-0.989 to 0.984-0.987 cosine, and int16
ones from 0.982-0.990 to 0.995-0.996 (README, "int8 and int16 embeddings").

The simulation follows what ONNX Runtime's QDQ quantizer and ai-edge-quantizer build, so that what the
fine-tuning sees is what the file computes:

- weights: int8, symmetric, one scale per output channel (max |w| / 127), taken *after* the following
  BatchNorm is folded in (the exporters fold it first): a conv's weight is fake-quantized as
  ``fq(w * k) / k`` with k the BatchNorm's per-channel gain, so that conv + BN(eval) equals the folded
  conv with quantized weights;
- activations: asymmetric 8-bit (16-bit in int16 mode), one range per tensor from min / max over the
  calibration images (re-measured every epoch of the fine-tuning), at the outputs the exporters
  quantize: each conv + BN + activation, each residual sum, each squeeze-excite product, the inputs of
  the other convolutions and fully-connected layers, and the network's output; the network's input gets
  the fixed range of a normalized image.

BatchNorm statistics stay frozen (the model runs in eval mode, as exported); every trainable parameter is
fine-tuned, with straight-through gradients through the rounding.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from effnet.export.checks import ExportData
from effnet.export.conversions import fingerprint
from effnet.export.quantization import MIN_ACTIVATION_RANGE, QuantizationConfig
from effnet.export.rounding import folded_gain, gptq_round, weight_layers, weight_levels
from effnet.export.torch_model import input_range
from effnet.models.blocks import Block
from effnet.models.layers import ConvBnAct, SqueezeExcite

log = logging.getLogger("effnet.export")

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
    """A parametrization of a conv / linear weight: per-output-channel symmetric rounding to -``top``..``top``
    of the weight with the following BatchNorm's gain folded in (``bn`` None: no BatchNorm follows)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm | None, top: int) -> None:
        super().__init__()
        self.bn = [bn]  # a list: not registered as a submodule of the parametrization
        self.top = top
        self.rounding = True

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.rounding:
            return weight
        shape = (-1,) + (1,) * (weight.dim() - 1)
        gain = folded_gain(self.bn[0], weight.shape[0]).to(weight)
        folded = weight * gain.reshape(shape)
        scale = folded.detach().abs().flatten(1).amax(1).clamp_min(1e-12) / self.top
        zero_point = torch.zeros(len(scale), dtype=torch.int32, device=weight.device)
        rounded = torch.fake_quantize_per_channel_affine(folded, scale, zero_point, 0, -self.top, self.top)
        return rounded / gain.reshape(shape)


class QuantizationSimulation:
    """Fake-quantizes ``network`` in place (weights through parametrizations, activations through forward
    hooks); `remove` restores plain modules with the (fine-tuned) float weights. ``portable``: the weight
    grid of a portable int8 .onnx file (`effnet.export.rounding.weight_levels`)."""

    def __init__(self, network: nn.Module, activation_bits: int = 8, portable: bool = False) -> None:
        self.network = network
        levels = 2**activation_bits - 1
        self._quantizers: list[_ActivationQuantizer] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._weights: list[nn.Module] = []

        self._calibrating = False

        def quantizer(fixed: tuple[float, float] | None = None) -> _ActivationQuantizer:
            # one made during calibration (an output first seen then) observes from the start
            self._quantizers.append(_ActivationQuantizer(levels, fixed))
            self._quantizers[-1].observing = self._calibrating
            return self._quantizers[-1]

        self._on_input(network, quantizer(input_range(network.preprocessing)))
        self._on_outputs(network, quantizer)
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
            rounding = _FoldedWeightQuantizer(bn, weight_levels(layer, portable))
            parametrize.register_parametrization(layer, "weight", rounding)
            self._weights.append(layer)

    def _on_input(self, module: nn.Module, quantize: _ActivationQuantizer) -> None:
        def hook(_module, inputs):
            x = inputs[0]
            return None if getattr(x, _QUANTIZED, False) else (quantize(x), *inputs[1:])

        self._handles.append(module.register_forward_pre_hook(hook))

    def _on_output(self, module: nn.Module, quantize: _ActivationQuantizer) -> None:
        self._handles.append(module.register_forward_hook(lambda _module, _inputs, out: quantize(out)))

    def _on_outputs(self, network: nn.Module, quantizer: Callable[[], _ActivationQuantizer]) -> None:
        """Quantize what ``network`` returns: its tensor, or each tensor of a tuple (a detector's class
        logits and box deltas are two outputs of the file, each with its own range)."""
        quantizers: list[_ActivationQuantizer] = []

        def hook(_module, _inputs, out):
            if isinstance(out, torch.Tensor):
                outputs, single = (out,), True
            else:
                outputs, single = tuple(out), False
            while len(quantizers) < len(outputs):
                quantizers.append(quantizer())
            quantized = tuple(quantize(x) for quantize, x in zip(quantizers, outputs, strict=False))
            return quantized[0] if single else quantized

        self._handles.append(network.register_forward_hook(hook))

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor, batch_size: int) -> None:
        """Activation ranges: min / max of the float network (weights unrounded, as the exporters calibrate)
        over ``images``."""
        for quantize in self._quantizers:
            quantize.reset()
            quantize.observing = True
        self._calibrating = True
        try:
            self._round_weights(False)
            for start in range(0, len(images), batch_size):
                self.network(images[start : start + batch_size])
        finally:
            self._calibrating = False
            self._round_weights(True)
            for quantize in self._quantizers:
                quantize.observing = False

    def _round_weights(self, rounding: bool) -> None:
        for layer in self._weights:
            layer.parametrizations.weight[0].rounding = rounding

    def remove(self) -> nn.Module:
        for handle in self._handles:
            handle.remove()
        for layer in self._weights:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        return self.network


def quantization_finetune(
    model: nn.Module,
    images: np.ndarray,
    steps: int,
    activation_bits: int = 8,
    batch_size: int = 16,
    learning_rate: float = 3e-5,
    seed: int = 0,
    progress: bool = True,
    augment: bool = True,
    portable: bool = False,
) -> nn.Module:
    """A copy of ``model`` fine-tuned for ``steps`` steps (Adam, cosine-decayed ``learning_rate``) through
    the int8 simulation (``activation_bits=16``: int16 activations) on ``images`` (preprocessed float32
    (N, C, H, W): the calibration images), distilling from ``model``'s own outputs; activation ranges are
    re-measured on ``images`` every epoch. ``augment``: train on mixed and mirrored images (`_augmented`):
    without it, fine-tuning on a few hundred images fitted them and moved away from float on others.
    ``portable``: simulate a portable int8 .onnx file's weight grid. ``model`` is not changed."""
    teacher = copy.deepcopy(model).cpu().float().eval()
    student = copy.deepcopy(teacher)
    inputs = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    embedding = getattr(model, "num_classes", 1) == 0
    simulation = QuantizationSimulation(student, activation_bits, portable)
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    per_epoch = max(1, len(inputs) // batch_size)
    bar = _progress(steps, progress)
    try:
        with torch.enable_grad():  # also when the caller exports under torch.no_grad()
            for step in range(steps):
                if step % per_epoch == 0:
                    simulation.calibrate(inputs, batch_size * 4)
                    order = torch.randperm(len(inputs), generator=generator)
                batch = inputs[order[(step % per_epoch) * batch_size :][:batch_size]]
                if augment:
                    batch = _augmented(batch, generator)
                with torch.no_grad():
                    targets = teacher(batch)
                loss = _distillation_loss(student(batch), targets, embedding)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
    finally:
        bar.close()
        simulation.remove()
    return student.eval()


def _augmented(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """New inputs from a batch of calibration images, for distillation (no labels to keep): each image
    mixed with another one (mixup, weight 0.5-1 on its own) and mirrored at random."""
    count = len(batch)
    weight = 0.5 + 0.5 * torch.rand(count, 1, 1, 1, generator=generator)
    partner = batch[torch.randperm(count, generator=generator)]
    mixed = weight * batch + (1 - weight) * partner
    mirror = torch.rand(count, generator=generator) < 0.5
    mixed[mirror] = mixed[mirror].flip(-1)
    return mixed


def network_to_quantize(
    network: nn.Module, config: QuantizationConfig | None, data: ExportData, portable: bool = False
) -> nn.Module:
    """The network an export converts and quantizes: ``network`` itself; with ``config.finetune_steps`` a
    copy fine-tuned on the calibration images; where the config's weight rounding is GPTQ (for a
    ``portable`` int8 .onnx file, see `QuantizationConfig.rounding_for`) a copy whose weights GPTQ rounded
    (`effnet.export.rounding`), on that file's weight grid. The last such copy is kept, by a fingerprint of
    the weights, calibration images and settings it came from, so that exporting one model to several
    formats prepares it once."""
    if config is None or not config.calibrated:
        return network
    images = data.calibration
    if config.finetune_steps:
        steps, bits = config.finetune_steps, 16 if config.mode == "int16" else 8
        log_line = f"quantization-aware fine-tuning: {steps} steps on {len(images)} images"
        settings: tuple[object, ...] = ("finetune", steps, bits, portable)
        prepare = partial(quantization_finetune, network, images, steps, bits, portable=portable)
    elif config.rounding_for(portable) == "gptq":
        log_line, settings = f"GPTQ weight rounding on {len(images)} images", ("gptq", portable)
        prepare = partial(gptq_round, network, images, portable=portable)
    else:
        return network
    key = fingerprint(network, images, *settings)
    if key is None:  # a network the fingerprint cannot cover: prepared afresh
        log.info(log_line)
        return prepare()
    if key not in _LAST_PREPARED:
        _LAST_PREPARED.clear()
        log.info(log_line)
        _LAST_PREPARED[key] = prepare()
    return _LAST_PREPARED[key]


_LAST_PREPARED: dict[str, nn.Module] = {}


def _distillation_loss(outputs, targets, embedding: bool) -> torch.Tensor:
    """How far the student's ``outputs`` are from the float model's ``targets``: 1 - cosine for embeddings;
    a detector's (class logits, box deltas): binary cross entropy to the float class probabilities plus the
    squared box-delta difference; class logits, [N, C] or per pixel [N, C, H, W]: KL divergence."""
    if not isinstance(outputs, torch.Tensor):
        (class_logits, boxes), (class_targets, box_targets) = outputs, targets
        classes = F.binary_cross_entropy_with_logits(class_logits, torch.sigmoid(class_targets))
        return classes + F.mse_loss(boxes, box_targets)
    if embedding:
        return 1.0 - F.cosine_similarity(outputs.flatten(1), targets.flatten(1)).mean()
    if outputs.dim() == 4:  # a segmenter: a class distribution per pixel
        outputs, targets = (x.movedim(1, -1).flatten(0, 2) for x in (outputs, targets))
    return F.kl_div(
        F.log_softmax(outputs, -1), F.log_softmax(targets, -1), log_target=True, reduction="batchmean"
    )


def _progress(steps: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=steps, desc="quantization-aware fine-tuning", unit="step", disable=not enabled, leave=False
    )
