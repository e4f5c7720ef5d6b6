"""Training a dense-prediction network (a detector, a segmenter) on the shared loop (`effnet.training.train`):
`train_dense`, to which a task brings only its batch -> loss step and its validation score.

Two modes, one loop. Fine-tuning (``train_whole_model=True``) trains the whole network on resized images,
flipped at random. With a frozen backbone (the default) the backbone's feature maps of every training image
(and of its mirror image, when flipping) are computed once and held in memory (`cached_features`); the rest
of the network (`HeadsOnFeatures`) then trains on those, so an epoch costs only its share of the network.

The network needs ``backbone``, ``preprocessing``, ``backbone_features(images) -> maps`` and
``forward_from_features(maps)``; the images (the task's resized samples) ``len()``, ``images`` (uint8
[N, S, S, 3]), ``target(index, flipped)`` and ``batches(preprocessing, batch_size)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from effnet.training.control import single_thread
from effnet.training.dense_hparams import DenseHParams
from effnet.training.history import History
from effnet.training.loop import StepOutput, TrainingTask, freeze_batchnorm, train
from effnet.training.options import RunOptions
from effnet.training.samples import Flips, TrainingSamples, normalize, pack_features, unpack_features
from effnet.training.schedule import backbone_scaled_sgd, warmup_cosine

Batches = Iterable[tuple[torch.Tensor, list[int]]]
Step = Callable[[nn.Module, torch.Tensor, list, int], StepOutput]
# (runner, validation batches, device) -> {"val_loss", "val_accuracy" (what History keeps the best of), ...}
Score = Callable[[nn.Module, Batches, torch.device], dict]


class HeadsOnFeatures(nn.Module):
    """What trains with a frozen backbone: every part of the network but its backbone, fed cached backbone
    features (packed by `pack_features`). Its parameters are the network's own (shared)."""

    def __init__(self, network: nn.Module, shapes: Sequence[tuple[int, int, int]]) -> None:
        super().__init__()
        for name, child in network.named_children():
            if name != "backbone":
                self.add_module(name, child)
        for name, parameter in network.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        object.__setattr__(self, "network", network)  # not a submodule: its backbone stays out
        self.shapes = [tuple(shape) for shape in shapes]

    def forward(self, packed: torch.Tensor):
        return self.network.forward_from_features(unpack_features(packed, self.shapes))


def cached_features(
    network: nn.Module, images: Any, flipped: bool, batch_size: int, desc: str
) -> torch.Tensor:
    """Packed backbone features [N, D, 1, 1] of every image (mirrored if ``flipped``), without gradients."""
    network.eval()
    packed = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
            pixels = images.images[start : start + batch_size]
            if flipped:
                pixels = pixels[:, :, ::-1]
            packed.append(pack_features(network.backbone_features(normalize(pixels, network.preprocessing))))
    return torch.cat(packed)


def feature_shapes(network: nn.Module, size: int) -> list[tuple[int, int, int]]:
    """The (channels, height, width) of each backbone map at input ``size``."""
    with torch.inference_mode():
        features = network.eval().backbone_features(torch.zeros(1, 3, size, size))
    return [tuple(f.shape[1:]) for f in features]


def feature_batches(features: torch.Tensor, batch_size: int) -> Batches:
    """(features, indexes) in order."""
    for start in range(0, len(features), batch_size):
        yield features[start : start + batch_size], list(range(start, min(start + batch_size, len(features))))


def train_dense(
    network: nn.Module,
    images: Any,
    val_images: Any,
    hp: DenseHParams,
    step: Step,
    score: Score,
    metrics: Sequence[str],
    model_dir: Path | None,
    fingerprint: dict,
    options: RunOptions | None = None,
    **task_options: Any,
) -> History:
    """Train ``network`` on ``images`` (whole or, with a frozen backbone, on cached features); keep the epoch
    with the best ``val_accuracy`` of ``score`` on ``val_images`` (else the last). Returns the history;
    ``network`` holds the kept weights. ``metrics``: the names of ``step``'s summed metrics;
    ``task_options`` go to `TrainingTask` (e.g. ``min_micro_batch``)."""
    network.eval()
    if hp.train_whole_model:
        model, keep, val_inputs = network, None, None

        def get(index: int, flipped: bool):
            pixels = images.images[index : index + 1]
            if flipped:
                pixels = pixels[:, :, ::-1]
            return normalize(pixels, network.preprocessing)[0], images.target(index, flipped)

    else:
        for parameter in network.backbone.parameters():
            parameter.requires_grad_(False)
        model = keep = HeadsOnFeatures(network, feature_shapes(network, network.input_size))
        plain = cached_features(network, images, False, hp.batch_size, "backbone features")
        mirrored = (
            cached_features(network, images, True, hp.batch_size, "flipped features") if hp.flip else None
        )

        def get(index: int, flipped: bool):
            use_mirror = flipped and mirrored is not None
            return (mirrored if use_mirror else plain)[index], images.target(index, use_mirror)

        val_inputs = (
            cached_features(network, val_images, False, hp.batch_size, "validation features")
            if val_images is not None
            else None
        )
    samples = TrainingSamples(len(images), get, hp.shuffle)

    def optimizer(steps_per_epoch: int):
        made = backbone_scaled_sgd(model, network.backbone, hp, hp.backbone_lr_scale)
        schedule = warmup_cosine(round(hp.warmup_epochs * steps_per_epoch), steps_per_epoch * hp.epochs)
        return made, torch.optim.lr_scheduler.LambdaLR(made, schedule)

    def validate(runner: nn.Module, context, precision) -> dict:
        if val_images is None:
            return {"val_loss": None, "val_accuracy": None}
        was_training = runner.training
        runner.eval()
        if val_inputs is not None:
            batches = feature_batches(val_inputs, hp.batch_size)
        else:
            batches = val_images.batches(network.preprocessing, hp.batch_size)
        with precision.autocast():
            result = score(runner, batches, next(model.parameters()).device)
        runner.train(was_training)
        return result

    def train_mode() -> None:
        freeze_batchnorm(network.backbone)  # a small batch's statistics would drift the pretrained ones

    task = TrainingTask(
        model,
        samples,
        step,
        optimizer,
        lambda epoch: Flips(0.5 if hp.flip else 0.0, hp.seed, epoch),
        validate,
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        seed=hp.seed,
        shuffle=hp.shuffle,
        num_workers=0,
        keep=keep,
        metrics=tuple(metrics),
        train_mode=train_mode,
        clip=(model, hp.clip_grad_norm),
        divergence_hint=f"lower learning_rate (now {hp.learning_rate:g})",
        **task_options,
    )
    # the head on cached features runs on one thread: on a 2-core CPU with another process busy, two threads
    # made a detector's Lite0 step at 320 px 40-70x slower (10-16 s vs 0.24 s), and unloaded one thread kept
    # pace with two (0.24 s at 320 px vs 0.077 s at 192 px, ~0.36x the pixels)
    with single_thread() if not hp.train_whole_model else contextlib.nullcontext():
        history = train(task, model_dir, fingerprint, options)
    network.eval()
    return history
