"""Quantization-aware fine-tuning: a few hundred steps that teach a float model to survive int8.

Post-training quantization rounds every weight and activation once and hopes the errors cancel. Where they
do not (a trained embedder's gdc or flatten head loses 1-2 points of cosine similarity to float in int8,
spread over every layer; see benchmarks/quantized_embeddings.py), the model itself can move to weights
whose rounded version behaves like the float original. `quantization_finetune` simulates the exporters'
integer arithmetic in PyTorch and fine-tunes a copy of the model through it, distilling from the
original: the copy's fake-quantized outputs are pulled towards the float model's (cosine similarity for an
embedding model, KL divergence for a classifier). The exporters then calibrate and quantize the
fine-tuned copy as usual, without bias correction (it would pull the layers back to the float model's
means), and the exported file is compared with the *original* float model. On trained digit embedders it
took int8 gdc / flatten heads from 0.976-0.989 to 0.984-0.987 cosine, and int16 ones from 0.982-0.990 to
0.995-0.996 (README, "int8 and int16 embeddings").

The simulation is `effnet.export.simulation.QuantizationSimulation`; its activation ranges are re-measured
every epoch of the fine-tuning. BatchNorm statistics stay frozen (the model runs in eval mode, as exported);
every trainable parameter is fine-tuned, with straight-through gradients through the rounding.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from effnet.export.checks import ExportData
from effnet.export.quantization import QuantizationConfig
from effnet.export.rounding import gptq_round
from effnet.export.simulation import QuantizationSimulation

log = logging.getLogger("effnet.export")


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
) -> nn.Module:
    """A copy of ``model`` fine-tuned for ``steps`` steps (Adam, cosine-decayed ``learning_rate``) through
    the int8 simulation (``activation_bits=16``: int16 activations) on ``images`` (preprocessed float32
    (N, C, H, W): the calibration images), distilling from ``model``'s own outputs; activation ranges are
    re-measured on ``images`` every epoch. ``augment``: train on mixed and mirrored images (`_augmented`):
    without it, fine-tuning on a few hundred images fitted them and moved away from float on others.
    ``model`` is not changed."""
    teacher = copy.deepcopy(model).cpu().float().eval()
    student = copy.deepcopy(teacher)
    inputs = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    embedding = getattr(model, "num_classes", 1) == 0
    simulation = QuantizationSimulation(student, activation_bits)
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


def network_to_quantize(network: nn.Module, config: QuantizationConfig | None, data: ExportData) -> nn.Module:
    """The network an export converts and quantizes: ``network`` itself; with ``config.finetune_steps`` a
    copy fine-tuned on the calibration images; with ``config.weight_rounding="gptq"`` a copy whose weights
    GPTQ rounded (`effnet.export.rounding`). The last such copy is kept, by a fingerprint of the weights,
    calibration images and settings it came from, so that exporting one model to several formats prepares
    it once."""
    if config is None or not config.calibrated:
        return network
    images = data.calibration
    if config.finetune_steps:
        steps, bits = config.finetune_steps, 16 if config.mode == "int16" else 8
        log_line = f"quantization-aware fine-tuning: {steps} steps on {len(images)} images"
        settings: tuple[object, ...] = ("finetune", steps, bits)
        prepare = partial(quantization_finetune, network, images, steps, bits)
    elif config.weight_rounding == "gptq":
        bits = 16 if config.mode == "int16" else 8
        log_line = f"GPTQ weight rounding for int{bits} activations on {len(images)} images"
        settings = ("gptq", bits)
        prepare = partial(gptq_round, network, images, activation_bits=bits)
    else:
        return network
    key = _fingerprint(network, images, *settings)
    if key not in _LAST_PREPARED:
        _LAST_PREPARED.clear()
        log.info(log_line)
        _LAST_PREPARED[key] = prepare()
    return _LAST_PREPARED[key]


_LAST_PREPARED: dict[str, nn.Module] = {}


def _fingerprint(network: nn.Module, images: np.ndarray, *settings: object) -> str:
    digest = hashlib.blake2b(repr(settings).encode(), digest_size=16)
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


def _distillation_loss(outputs: torch.Tensor, targets: torch.Tensor, embedding: bool) -> torch.Tensor:
    if embedding:
        return 1.0 - F.cosine_similarity(outputs.flatten(1), targets.flatten(1)).mean()
    return F.kl_div(
        F.log_softmax(outputs, -1), F.log_softmax(targets, -1), log_target=True, reduction="batchmean"
    )


def _progress(steps: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=steps, desc="quantization-aware fine-tuning", unit="step", disable=not enabled, leave=False
    )
