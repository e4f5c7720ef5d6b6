"""Error-compensating weight rounding (GPTQ): int8 weights chosen so that each layer's *output* stays close
to float, not each weight.

Post-training quantization rounds every weight to its nearest int8 level on its own. Rounding a layer's
weights one input at a time and spreading each rounding error over the inputs not yet rounded, weighted
by how the calibration images correlate them (the inverse Hessian of the layer's squared output error),
cancels most of that error in the layer's output (Frantar et al., "GPTQ", 2022, after Optimal Brain
Surgeon). `gptq_round` does this for every convolution and fully-connected layer of a copy of the model
and writes the chosen levels back as float weights that lie exactly on the int8 grid the exporters use
(symmetric, one scale per output channel = max |w| / 127, after folding the following BatchNorm), so the
exporters' own round-to-nearest reproduces them. Bias correction (`effnet.export.bias_correction`) still
runs on the file, towards the *original* network: the rounded copy already carries the rounding's shift.

The activations of an int8 file are rounded too, and that error reaches each layer through its inputs.
With ``activation_bits`` (what the exporters pass: 8, or 16 for int16 files) the layers are rounded in
execution order inside a simulation of the file (`effnet.export.simulation`): each layer's Hessian comes
from the inputs the file will give it (quantized activations, earlier layers already rounded), and where
the layer sees enough input vectors (`SAMPLES_PER_INPUT`) its weights are first refitted to reproduce the
float layer's output on the float network's inputs from those quantized inputs (`_refit`), so that each
layer absorbs part of the error it receives instead of passing it on.

Measured on a trained Lite0 embedder with a gdc head (digits, benchmarks/quantized_embeddings.py): the float
model with GPTQ-rounded weights keeps 0.994 cosine similarity to the original where nearest rounding keeps
0.977. In the int8 simulation (no bias correction) nearest rounding keeps 0.964, GPTQ on float inputs 0.982,
activation-aware GPTQ 0.991; the int8 .onnx with bias correction 0.983 / 0.990 / 0.991. Rounding on float
inputs takes one pass over the calibration images (about 20 s for Lite0 at 112 px on 2 cores); the
activation-aware rounding one partial pass per layer (2-4 min), about what 300 steps of quantization-aware
fine-tuning cost (`effnet.export.qat`), which keeps less (int8 0.987).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from effnet.export.simulation import WEIGHT_LEVELS, QuantizationSimulation, folded_gain, weight_layers
from effnet.models.layers import TFSameConv2d, tf_same_padding

MAX_BLOCK = 2048  # inputs per Hessian block: a wider layer (the flatten head's FC) gets block-diagonal ones
# Activation-aware rounding refits a layer to its quantized inputs only where it sees at least this many input
# vectors per input of a block: with fewer, the refit fits the calibration images rather than the layer (the
# gdc head's FC sees one vector per image). A Lite0 + gdc embedder's held-out cosine in the int8 simulation,
# 200 calibration images: 0.982 with GPTQ on float inputs, 0.971 refitting every layer, 0.991 refitting the
# layers with at least 20 or 50 vectors per input, 0.973 with 10 (the gdc conv's 16 inputs then qualify).
SAMPLES_PER_INPUT = 50


@torch.no_grad()
def gptq_round(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 16,
    damping: float = 0.01,
    progress: bool = True,
    activation_bits: int | None = None,
) -> nn.Module:
    """A copy of ``model`` whose convolution and fully-connected weights lie on the int8 grid, rounded by
    GPTQ on ``images`` (preprocessed float32 (N, C, H, W): the calibration images). ``damping``: the
    fraction of the Hessian's mean diagonal added to it (numerical stability, and less trust in directions
    the images barely reach). ``activation_bits`` (8 or 16): round for a file whose activations are
    quantized to that many bits, layer by layer in execution order (`_round_in_order`); None: every layer
    on its float inputs, from one pass over the images. ``model`` is not changed."""
    rounded = copy.deepcopy(model).cpu().float().eval()
    inputs = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    layers = list(weight_layers(rounded))
    bar = _progress(len(layers), progress)
    try:
        if activation_bits is not None:
            _round_in_order(rounded, inputs, batch_size, damping, activation_bits, bar)
            return rounded
        hessians = _hessians(rounded, [layer for layer, _ in layers], inputs, batch_size)
        for layer, bn in layers:
            layer.weight.copy_(_round_layer(layer.weight, _groups(layer), bn, hessians.pop(layer), damping))
            bar.update(1)
    finally:
        bar.close()
    return rounded


class _Stop(Exception):
    """Raised by a hook once it has the input it wanted: the rest of the forward pass is not needed."""


def _round_in_order(
    network: nn.Module, inputs: torch.Tensor, batch_size: int, damping: float, bits: int, bar
) -> None:
    """Activation-aware GPTQ, in place: each layer is rounded on its inputs as the quantized file computes
    them (`effnet.export.simulation`: quantized activations, every earlier layer already rounded), and
    before that, where it sees enough inputs (`SAMPLES_PER_INPUT`), refitted to reproduce the float layer's
    output on the float network's inputs (`_refit`), so that each layer also compensates the error of the
    activations it receives (the asymmetric objective of Li et al., "GPTAQ", 2025). One partial pass over
    the images per layer: about 2 minutes for Lite0 at 112 px on 2 cores."""
    reference = copy.deepcopy(network)
    pairs = zip(weight_layers(network), weight_layers(reference), strict=True)
    originals = {layer: original for (layer, _), (original, _) in pairs}
    simulation = QuantizationSimulation(network, bits)
    try:
        simulation.calibrate(inputs, batch_size)
        for layer, bn in _execution_order(network, inputs[:1]):
            hessian, cross, count = _input_statistics(
                (network, layer), (reference, originals[layer]), inputs, batch_size
            )
            weight, groups = simulation.float_weight(layer), _groups(layer)
            if count >= SAMPLES_PER_INPUT * hessian.shape[-1]:
                weight.copy_(_refit(weight, groups, hessian, cross, damping))
            weight.copy_(_round_layer(weight, groups, bn, hessian, damping))
            bar.update(1)
    finally:
        simulation.remove()


def _execution_order(network: nn.Module, image: torch.Tensor) -> list[tuple[nn.Module, nn.Module | None]]:
    """`weight_layers` of ``network`` in the order a forward pass runs them."""
    layers = dict(weight_layers(network))
    order: list[nn.Module] = []
    handles = [layer.register_forward_pre_hook(lambda m, _: order.append(m)) for layer in layers]
    try:
        network(image)
    finally:
        for handle in handles:
            handle.remove()
    missing = len(layers) - len(set(order))
    if missing:
        raise RuntimeError(f"GPTQ rounding: {missing} layers never ran on the calibration images")
    return [(layer, layers[layer]) for layer in dict.fromkeys(order)]


def _input_statistics(
    quantized: tuple[nn.Module, nn.Module],
    original: tuple[nn.Module, nn.Module],
    inputs: torch.Tensor,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """For one layer, given as (network, layer) in the simulated file and in the float network: the mean
    outer product of its quantized input vectors with themselves (the Hessian) and of its float input
    vectors with the quantized ones, in `_hessians`' blocks, and how many vectors (output positions) those
    means are over."""
    hessian = cross = None
    count = 0
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        columns = [_capture_columns(network, layer, batch) for network, layer in (quantized, original)]
        quantized_columns, float_columns = (_blocks(c) for c in columns)
        product = torch.einsum("udp,uep->ude", quantized_columns, quantized_columns).double()
        mixed = torch.einsum("udp,uep->ude", float_columns, quantized_columns).double()
        hessian = product if hessian is None else hessian + product
        cross = mixed if cross is None else cross + mixed
        count += quantized_columns.shape[-1]
    return hessian / count, cross / count, count


def _capture_columns(network: nn.Module, layer: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """``layer``'s input columns (`_input_columns`) when ``network`` runs on ``batch``, as the layer sees
    them (after any input quantizer the simulation put before it); the pass stops at the layer."""
    captured = []

    def hook(module: nn.Module, layer_inputs: tuple[torch.Tensor, ...]) -> None:
        captured.append(_input_columns(module, layer_inputs[0].detach().float()))
        raise _Stop

    handle = layer.register_forward_pre_hook(hook)
    try:
        network(batch)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def _refit(
    weight: torch.Tensor, groups: int, hessian: torch.Tensor, cross: torch.Tensor, damping: float
) -> torch.Tensor:
    """The float weight V that best reproduces the original layer's output W x from the quantized inputs q:
    the least-squares solution of min E|W x - V q|^2 + d |V - W|^2, V = (W C + d W)(H + d I)^-1 with
    H = E[q q^T], C = E[x q^T] and d = ``damping`` x H's mean diagonal (the pull towards W keeps
    directions the images barely reach as they were), per block."""
    outputs, inputs = weight.shape[0], weight[0].numel()
    blocks = _to_blocks(weight.detach().double().reshape(groups, outputs // groups, inputs))
    diagonal = torch.diagonal(hessian, dim1=1, dim2=2)
    pull = damping * diagonal.mean(1).clamp_min(1e-12).reshape(-1, 1, 1)
    identity = torch.eye(hessian.shape[-1], dtype=hessian.dtype)
    refitted = torch.linalg.solve(hessian + pull * identity, (blocks @ cross + pull * blocks).transpose(1, 2))
    return _from_blocks(refitted.transpose(1, 2), groups, inputs).reshape(weight.shape).to(weight.dtype)


def _hessians(
    network: nn.Module, layers: list[nn.Module], inputs: torch.Tensor, batch_size: int
) -> dict[nn.Module, torch.Tensor]:
    """For each layer, the mean outer product of its input vectors over every output position of every
    image: (units, inputs, inputs), one block per group (a depthwise conv: one per channel) and per
    `MAX_BLOCK` inputs."""
    sums: dict[nn.Module, torch.Tensor] = {}
    counts: dict[nn.Module, int] = {}

    def hook(layer: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        columns = _blocks(_input_columns(layer, inputs[0].detach().float()))
        product = torch.einsum("udp,uep->ude", columns, columns).double()
        sums[layer] = sums[layer] + product if layer in sums else product
        counts[layer] = counts.get(layer, 0) + columns.shape[-1]

    handles = [layer.register_forward_pre_hook(hook) for layer in layers]
    try:
        for start in range(0, len(inputs), batch_size):
            network(inputs[start : start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in sums]
    if missing:
        raise RuntimeError(f"GPTQ rounding: {len(missing)} layers never ran on the calibration images")
    return {layer: sums[layer] / counts[layer] for layer in layers}


def _input_columns(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(groups, inputs per output value, positions): what each output value of ``layer`` is a weighted sum
    of, for every output position in the batch."""
    if isinstance(layer, nn.Linear):
        return x.reshape(-1, x.shape[-1]).T[None]
    if isinstance(layer, TFSameConv2d):
        pad_h = tf_same_padding(x.shape[-2], layer.kernel_size[0], layer.stride[0], layer.dilation[0])
        pad_w = tf_same_padding(x.shape[-1], layer.kernel_size[1], layer.stride[1], layer.dilation[1])
        x = F.pad(x, (pad_w[0], pad_w[1], pad_h[0], pad_h[1]))
    columns = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
    batch, groups = x.shape[0], layer.groups
    columns = columns.reshape(batch, groups, columns.shape[1] // groups, columns.shape[2])
    return columns.permute(1, 2, 0, 3).reshape(groups, columns.shape[2], -1)


def _block_shape(inputs: int) -> tuple[int, int]:
    """(blocks, inputs per block) for a layer with ``inputs`` inputs per output value."""
    blocks = math.ceil(inputs / MAX_BLOCK)
    return blocks, math.ceil(inputs / blocks)


def _blocks(columns: torch.Tensor) -> torch.Tensor:
    """(groups, inputs, positions) -> (groups * blocks, block inputs, positions), zero-padded."""
    groups, inputs, positions = columns.shape
    blocks, size = _block_shape(inputs)
    columns = F.pad(columns, (0, 0, 0, blocks * size - inputs))
    return columns.reshape(groups * blocks, size, positions)


def _groups(layer: nn.Module) -> int:
    return layer.groups if isinstance(layer, nn.Conv2d) else 1


def _to_blocks(matrix: torch.Tensor) -> torch.Tensor:
    """Weights (groups, rows, inputs) -> (groups * blocks, rows, block inputs), zero-padded: the units
    `_gptq` and `_refit` work on, matching `_blocks`' Hessian blocks."""
    groups, rows, inputs = matrix.shape
    blocks, size = _block_shape(inputs)
    matrix = F.pad(matrix, (0, blocks * size - inputs))
    return matrix.reshape(groups, rows, blocks, size).transpose(1, 2).reshape(groups * blocks, rows, size)


def _from_blocks(units: torch.Tensor, groups: int, inputs: int) -> torch.Tensor:
    """The inverse of `_to_blocks`: (groups * blocks, rows, block inputs) -> (groups, rows, inputs)."""
    _, rows, size = units.shape
    matrix = units.reshape(groups, -1, rows, size).transpose(1, 2).reshape(groups, rows, -1)
    return matrix[..., :inputs]


def _round_layer(
    weight: torch.Tensor,
    groups: int,
    bn: nn.modules.batchnorm._BatchNorm | None,
    hessian: torch.Tensor,
    damping: float,
) -> torch.Tensor:
    """A layer's new weight (``weight``: its float weight, ``groups``: its convolution groups, 1 for a
    linear layer): GPTQ-rounded levels times the per-channel scale, with the BatchNorm gain divided back
    out."""
    original = weight
    weight = weight.detach().double()
    gain = folded_gain(bn, weight.shape[0]).double().reshape((-1,) + (1,) * (weight.dim() - 1))
    outputs, inputs = weight.shape[0], weight[0].numel()
    folded = (weight * gain).reshape(groups, outputs // groups, inputs)
    scale = folded.abs().amax(2, keepdim=True).clamp_min(1e-12) / WEIGHT_LEVELS  # (groups, rows, 1)
    levels = _from_blocks(_gptq(_to_blocks(folded / scale), hessian, damping), groups, inputs)
    # The exporters take each channel's scale from its largest weight: keep that weight at +-127.
    largest = (folded / scale).abs().argmax(2, keepdim=True)
    short = levels.abs().amax(2, keepdim=True) < WEIGHT_LEVELS
    pinned = torch.sign(folded.gather(2, largest)) * WEIGHT_LEVELS
    levels.scatter_(2, largest, torch.where(short, pinned, levels.gather(2, largest)))
    return (levels * scale).reshape(weight.shape).div(gain).to(original.dtype)


def _gptq(levels: torch.Tensor, hessian: torch.Tensor, damping: float) -> torch.Tensor:
    """Round ``levels`` (units, rows, inputs: weights in units of their scale) one input at a time, each
    rounding error compensated on the inputs after it through the inverse-Hessian's Cholesky factor."""
    units, _, inputs = levels.shape
    hessian = hessian.clone()
    diagonal = torch.diagonal(hessian, dim1=1, dim2=2)
    dead = diagonal == 0  # an input no calibration image reached (or block padding): plain rounding
    diagonal[dead] = 1.0
    scale = diagonal.mean(1).reshape(units, 1, 1)
    hessian += damping * scale * torch.eye(inputs, dtype=hessian.dtype)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(hessian))
    factor = torch.linalg.cholesky(inverse, upper=True)  # (units, inputs, inputs)
    levels = levels.clone()
    rounded = torch.empty_like(levels)
    for column in range(inputs):
        current = levels[:, :, column]
        rounded[:, :, column] = current.round().clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS)
        error = (current - rounded[:, :, column]) / factor[:, column, column, None]
        levels[:, :, column + 1 :] -= error[:, :, None] * factor[:, None, column, column + 1 :]
    return rounded


def _progress(layers: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=layers, desc="GPTQ weight rounding", unit="layer", disable=not enabled, leave=False)
