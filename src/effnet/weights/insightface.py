"""insightface ``arcface_torch`` IResNet checkpoints -> effnet's IResNet (for users migrating from it).

arcface_torch (recognition/arcface_torch/backbones/iresnet.py) names the body as effnet's `IResNet` does:
``conv1``, ``bn1``, ``prelu``, ``layerN.I.{bn1, conv1, bn2, prelu, conv2, bn3, downsample.0, downsample.1}``;
its E head sits at the top level (``bn2``, ``fc``, ``features``), where effnet keeps it under ``head.``. The
files come as a plain state dict (``model.pt``, ``backbone.pth``), saved from DDP (``module.`` prefixes),
under ``state_dict``, or as a training checkpoint (``state_dict_backbone``); all are read.

What the file holds decides the model: the blocks per stage give the depth (r18/34/50/100/200), ``fc``'s
outputs the embedding size and its inputs (512 x map x map) the input size (7 x 7 map: 112 px).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from effnet.weights.convert import StateDict, WeightsMismatchError, unwrap_checkpoint

HEAD_MODULES = ("bn2", "fc", "features")  # arcface_torch's E head, at the top level of its state dict
_BLOCK = re.compile(r"^layer([1-4])\.(\d+)\.")


@dataclass(frozen=True)
class IResNetWeights:
    """An IResNet state dict in effnet naming, and the model it fits."""

    state: StateDict
    arch: str  # "iresnet50", ...
    layers: tuple[int, int, int, int]
    embedding_dim: int
    input_size: int
    naming: str  # "insightface" or "effnet"


def is_iresnet_state(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state`` is an IResNet state dict, in arcface_torch or effnet naming."""
    return "conv1.weight" in state and "layer1.0.conv1.weight" in state


def block_counts(state: Mapping[str, torch.Tensor]) -> tuple[int, int, int, int]:
    """Blocks per stage (layer1..layer4), from the key names."""
    counts = [0, 0, 0, 0]
    for key in state:
        match = _BLOCK.match(key)
        if match:
            stage, index = int(match.group(1)) - 1, int(match.group(2))
            counts[stage] = max(counts[stage], index + 1)
    return counts[0], counts[1], counts[2], counts[3]


def arch_for(layers: tuple[int, ...]) -> str | None:
    from effnet.models.families.iresnet import DEPTHS

    return next((name for name, depths in DEPTHS.items() if tuple(depths) == tuple(layers)), None)


def read_iresnet_weights(state: Mapping, label: str = "the weights") -> IResNetWeights:
    """The IResNet in a checkpoint (unwrapped, prefixes stripped), renamed to effnet's keys, with the
    architecture it fits. ``label`` (the file name) starts every error message."""
    try:
        state = unwrap_checkpoint(state)
    except WeightsMismatchError as error:
        raise WeightsMismatchError(f"{label}: {error}") from None
    if not is_iresnet_state(state):
        raise WeightsMismatchError(
            f"{label}: not an IResNet state dict (no conv1.weight / layer1.0.conv1.weight; first keys "
            f"{list(state)[:4]}); expected an insightface arcface_torch iresnet18/34/50/100/200 checkpoint "
            "(other arcface_torch backbones such as mobilefacenet are not supported)"
        )
    naming = "effnet" if "head.fc.weight" in state else "insightface"
    if naming == "insightface":
        state = {
            (f"head.{key}" if key.split(".", 1)[0] in HEAD_MODULES else key): value
            for key, value in state.items()
        }
    fc = state.get("head.fc.weight")
    if fc is None or fc.ndim != 2:
        raise WeightsMismatchError(
            f"{label}: has no fc.weight (the embedding layer of the E head); the file is incomplete or holds "
            "another head; save the whole backbone's state_dict()"
        )
    layers = block_counts(state)
    arch = arch_for(layers)
    if arch is None:
        raise WeightsMismatchError(
            f"{label}: {layers} blocks per stage match no IResNet (r18 (2, 2, 2, 2), r34 (3, 4, 6, 3), r50 "
            "(3, 4, 14, 3), r100 (3, 13, 30, 3), r200 (6, 26, 60, 6)); the file is incomplete or not an "
            "arcface_torch IResNet"
        )
    channels = state["layer4.0.conv1.weight"].shape[0] if "layer4.0.conv1.weight" in state else 512
    side = math.isqrt(max(fc.shape[1] // max(channels, 1), 0))
    if side < 1 or channels * side * side != fc.shape[1]:
        raise WeightsMismatchError(
            f"{label}: fc.weight has {fc.shape[1]} inputs, not {channels} x a square map: not an E head"
        )
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}  # fp16 saves
    return IResNetWeights(state, arch, layers, int(fc.shape[0]), side * 16, naming)


def load_iresnet_weights(model: torch.nn.Module, weights: IResNetWeights, label: str) -> None:
    """Load ``weights`` into an effnet IResNet strictly: every tensor present and of the right shape (the
    BatchNorm step counters excepted: older files lack them). A classifier on the embedding, which these
    files do not have, keeps its fresh initialisation."""
    if weights.arch != model.name:
        raise WeightsMismatchError(
            f"{label}: holds {weights.arch} weights ({weights.layers} blocks per stage), not {model.name}; "
            f"use {weights.arch} (effnet.embedder.load_insightface(path) picks it by itself)"
        )
    own = model.state_dict()
    state = dict(weights.state)
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=value.dtype)
    trained_here = [k for k in own if k.startswith("classifier.")]
    missing = [k for k in own if k not in state and k not in trained_here]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        problems = "; ".join(
            f"{name} ({len(items)}): {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
            for name, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if items
        )
        hint = ""
        if any(k.startswith("head.fc.") for k in wrong):
            hint = (
                f"; the file's E head was made for {weights.input_size} px input: build the model with "
                f"input_size={weights.input_size}"
            )
        raise WeightsMismatchError(f"{label}: does not fit {model.name}: {problems}{hint}")
    model.load_state_dict(state, strict=False)
