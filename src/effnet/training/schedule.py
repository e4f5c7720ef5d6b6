"""Derived seeds, the learning-rate schedule and the optimizer: pure functions of the run's settings, so a
resumed run draws exactly what an uninterrupted one draws."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**31


def step_seed(seed: int, step: int, rank: int, micro: int) -> int:
    """The seed of one micro-step on one rank (dropout, stochastic depth): derived, never carried."""
    return (epoch_seed(seed, step) * 8191 + rank * 127 + micro) % 2**31


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class OptimizerSettings(Protocol):
    """What `make_optimizer` reads from a task's hyperparameters."""

    learning_rate: float
    weight_decay: float
    momentum: float


def make_optimizer(
    module: nn.Module, hp: OptimizerSettings, backbone_lr_scale: float = 1.0
) -> torch.optim.Optimizer:
    """SGD with momentum; no weight decay on biases and BatchNorm parameters; everything but the
    classifier learns at ``backbone_lr_scale`` times the learning rate (a pretrained backbone needs
    smaller steps than a new head)."""
    head = {id(p) for p in getattr(module, "classifier", nn.Identity()).parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for param in module.parameters():
        if param.requires_grad:
            groups.setdefault((param.ndim <= 1, id(param) in head), []).append(param)
    return torch.optim.SGD(
        [
            {
                "params": params,
                "weight_decay": 0.0 if no_decay else hp.weight_decay,
                "lr": hp.learning_rate * (1.0 if is_head else backbone_lr_scale),
            }
            for (no_decay, is_head), params in groups.items()
        ],
        lr=hp.learning_rate,
        momentum=hp.momentum,
    )


def backbone_scaled_sgd(
    model: nn.Module, backbone: nn.Module, hp: OptimizerSettings, backbone_lr_scale: float
) -> torch.optim.Optimizer:
    """SGD with momentum over ``model``'s trainable parameters; no weight decay on biases and normalization
    parameters; those of ``backbone`` (pretrained) at ``backbone_lr_scale`` times the learning rate. The
    detector's and the segmenter's optimizer (their new parts are not one ``classifier``)."""
    in_backbone = {id(p) for p in backbone.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for parameter in model.parameters():
        if parameter.requires_grad:
            groups.setdefault((parameter.ndim <= 1, id(parameter) in in_backbone), []).append(parameter)
    return torch.optim.SGD(
        [
            {
                "params": params,
                "weight_decay": 0.0 if no_decay else hp.weight_decay,
                "lr": hp.learning_rate * (backbone_lr_scale if is_backbone else 1.0),
            }
            for (no_decay, is_backbone), params in groups.items()
        ],
        lr=hp.learning_rate,
        momentum=hp.momentum,
    )
