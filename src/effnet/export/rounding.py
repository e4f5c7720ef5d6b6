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

Measured on a trained Lite0 embedder with a gdc head (benchmarks/quantized_embeddings.py): the float
model with GPTQ-rounded weights keeps 0.994 cosine similarity to the original where nearest rounding keeps
0.977; the int16 file, whose loss is mostly the weights, goes from 0.990 to 0.998, the int8 file from 0.983
to 0.990 (bias correction on in both). It needs one pass over the calibration images and no training:
about 20 s for Lite0 at 112 px on 2 cores, against 2-3 minutes for quantization-aware fine-tuning
(`effnet.export.qat`), which keeps less (int8 0.987).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from effnet.models.layers import TFSameConv2d, tf_same_padding

WEIGHT_LEVELS = 127  # symmetric int8 weights: -127..127, as both exporters write them
# The weights of layers that x86 int8 kernels multiply in pairs, in a portable int8 .onnx file: -63..63.
# Without VNNI, ONNX Runtime's uint8 x int8 kernels (vpmaddubsw) add the products of two neighbouring inputs
# into int16 and saturate: 2 x 255 x 127 overflows 32767, 2 x 255 x 63 does not, on any input.
PAIRED_WEIGHT_LEVELS = 63
MAX_BLOCK = 2048  # inputs per Hessian block: a wider layer (the flatten head's FC) gets block-diagonal ones
# Calibration images the Hessians are measured on: each image gives every layer thousands of input vectors
# (one per output position), so more images barely change them while the pass costs time per image
# (GPTQ's authors use 128 samples; bias correction uses 128 images too).
HESSIAN_IMAGES = 128

log = logging.getLogger("effnet.export")


def folded_gain(bn: nn.modules.batchnorm._BatchNorm | None, channels: int) -> torch.Tensor:
    """The per-channel factor a BatchNorm multiplies its input by (in eval mode), which the exporters fold
    into the layer before it: ones where no BatchNorm follows; never exactly zero."""
    if bn is None:
        return torch.ones(channels)
    gain = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        gain = gain * bn.weight
    return torch.where(gain.abs() < 1e-12, torch.full_like(gain, 1e-12), gain)


def multiplies_in_pairs(layer: nn.Module) -> bool:
    """Whether integer GEMM kernels multiply ``layer``'s weights: every fully-connected layer and every
    convolution except depthwise ones (one input channel per group), which run in a kernel of their own."""
    if isinstance(layer, nn.Conv2d):
        return not (layer.groups > 1 and layer.in_channels == layer.groups)
    return isinstance(layer, nn.Linear)


def weight_levels(layer: nn.Module, portable: bool) -> int:
    """The largest integer weight level of ``layer`` in a file: `PAIRED_WEIGHT_LEVELS` for the layers that
    `multiplies_in_pairs` in a ``portable`` file (see `effnet.export.quantization.INT8_FORMATS`), else
    `WEIGHT_LEVELS`."""
    return PAIRED_WEIGHT_LEVELS if portable and multiplies_in_pairs(layer) else WEIGHT_LEVELS


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


@torch.no_grad()
def gptq_round(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 8,
    damping: float = 0.01,
    progress: bool = True,
    portable: bool = False,
) -> nn.Module:
    """A copy of ``model`` whose convolution and fully-connected weights lie on the int8 grid, rounded by
    GPTQ on ``images`` (preprocessed float32 (N, C, H, W): the calibration images). ``damping``: the
    fraction of the Hessian's mean diagonal added to it (numerical stability, and less trust in directions
    the images barely reach). ``portable``: the grid of a portable int8 .onnx file (`weight_levels`).
    The first `HESSIAN_IMAGES` images are used. ``model`` is not changed."""
    rounded = copy.deepcopy(model).cpu().float().eval()
    layers = list(weight_layers(rounded))
    hessians = _hessians(rounded, [layer for layer, _ in layers], images[:HESSIAN_IMAGES], batch_size)
    bar = _progress(len(layers), progress)
    fallbacks = 0
    try:
        for layer, bn in layers:
            levels = weight_levels(layer, portable)
            weight, fallback = _round_layer(layer, bn, hessians.pop(layer), damping, levels)
            layer.weight.copy_(weight)
            fallbacks += bool(fallback)
            bar.update(1)
    finally:
        bar.close()
    if fallbacks:
        log.warning(
            "GPTQ rounding: %d of %d layers rounded (in part) to nearest: their inputs on the calibration "
            "images overflow or are numerically degenerate (an untrained network?)",
            fallbacks,
            len(layers),
        )
    return rounded


def _hessians(
    network: nn.Module, layers: list[nn.Module], images: np.ndarray, batch_size: int
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
        inputs = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
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


def _round_layer(
    layer: nn.Module,
    bn: nn.modules.batchnorm._BatchNorm | None,
    hessian: torch.Tensor,
    damping: float,
    top: int = WEIGHT_LEVELS,
) -> tuple[torch.Tensor, int]:
    """The layer's new weight: GPTQ-rounded levels (-``top``..``top``) times the per-channel scale, with the
    BatchNorm gain divided back out; and how many of its weight groups fell back to nearest rounding (see
    `_gptq`)."""
    weight = layer.weight.detach().double()
    gain = folded_gain(bn, weight.shape[0]).double().reshape((-1,) + (1,) * (weight.dim() - 1))
    groups = layer.groups if isinstance(layer, nn.Conv2d) else 1
    outputs, inputs = weight.shape[0], weight[0].numel()
    rows = outputs // groups
    folded = (weight * gain).reshape(groups, rows, inputs)
    scale = folded.abs().amax(2, keepdim=True).clamp_min(1e-12) / top  # (groups, rows, 1)
    blocks, size = _block_shape(inputs)
    levels = F.pad(folded / scale, (0, blocks * size - inputs))
    levels = levels.reshape(groups, rows, blocks, size).transpose(1, 2).reshape(groups * blocks, rows, size)
    levels, fallback = _gptq(levels, hessian, damping, top)
    levels = levels.reshape(groups, blocks, rows, size).transpose(1, 2).reshape(groups, rows, -1)
    levels = levels[..., :inputs]
    # The exporters take each channel's scale from its largest weight: keep that weight at +-top.
    largest = (folded / scale).abs().argmax(2, keepdim=True)
    short = levels.abs().amax(2, keepdim=True) < top
    pinned = torch.sign(folded.gather(2, largest)) * top
    levels.scatter_(2, largest, torch.where(short, pinned, levels.gather(2, largest)))
    return (levels * scale).reshape(weight.shape).div(gain).to(layer.weight.dtype), fallback


def _gptq(
    levels: torch.Tensor, hessian: torch.Tensor, damping: float, top: int = WEIGHT_LEVELS
) -> tuple[torch.Tensor, int]:
    """Round ``levels`` (units, rows, inputs: weights in units of their scale, within -``top``..``top``)
    one input at a time, each
    rounding error compensated on the inputs after it through the inverse-Hessian's Cholesky factor; and
    the number of units rounded to nearest instead (their Hessian not finite or not positive definite)."""
    units, _, inputs = levels.shape
    identity = torch.eye(inputs, dtype=hessian.dtype)
    # A unit whose inputs overflowed on the calibration images (an untrained deep network's activations can
    # reach float32's limit) gets the identity: no error is passed on, which is plain nearest rounding.
    finite = torch.isfinite(hessian).flatten(1).all(1)
    hessian = torch.where(finite[:, None, None], hessian, identity)
    diagonal = torch.diagonal(hessian, dim1=1, dim2=2)
    dead = diagonal == 0  # an input no calibration image reached (or block padding): plain rounding
    diagonal[dead] = 1.0
    scale = diagonal.mean(1).reshape(units, 1, 1)
    hessian += damping * scale * identity
    lower, info = torch.linalg.cholesky_ex(hessian)
    if bool((info != 0).any()):  # not positive definite in floating point: nearest rounding for those units
        hessian[info != 0] = identity
        lower = torch.linalg.cholesky(hessian)
    fallback = int((~finite).sum()) + int((info != 0).sum())
    inverse = torch.cholesky_inverse(lower)
    factor = torch.linalg.cholesky(inverse, upper=True)  # (units, inputs, inputs)
    levels = levels.clone()
    rounded = torch.empty_like(levels)
    for column in range(inputs):
        current = levels[:, :, column]
        rounded[:, :, column] = current.round().clamp(-top, top)
        error = (current - rounded[:, :, column]) / factor[:, column, column, None]
        levels[:, :, column + 1 :] -= error[:, :, None] * factor[:, None, column, column + 1 :]
    return rounded, fallback


def _progress(layers: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=layers, desc="GPTQ weight rounding", unit="layer", disable=not enabled, leave=False)
