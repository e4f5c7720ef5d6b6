"""Training a segmenter on the shared loop (`effnet.training.train`): the segmenter's `TrainingTask`.

Two modes, one loop, as for the detector. Fine-tuning (``train_whole_model=True``) trains the whole network
on resized images and masks, flipped at random. With a frozen backbone (the default) the backbone's two maps
(stride 8 and the output stride) of every training image, and of its mirror image when flipping, are computed
once and held in memory; the head then trains on those, so an epoch costs only the head's share.

The task brings: per-pixel cross-entropy (255 ignored; each image's mean over its labelled pixels), SGD with
a warm-up and cosine schedule, and validation by mIoU.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from effnet.image_segmenter.hparams import SegmenterHParams
from effnet.image_segmenter.metrics import IGNORE_INDEX, confusion_matrix, segmentation_metrics
from effnet.image_segmenter.samples import ResizedSegmentation
from effnet.training.control import single_thread
from effnet.training.history import History
from effnet.training.loop import StepOutput, TrainingTask, freeze_batchnorm, train
from effnet.training.options import RunOptions
from effnet.training.samples import Flips, TrainingSamples, normalize, pack_features, unpack_features
from effnet.training.schedule import backbone_scaled_sgd, warmup_cosine

log = logging.getLogger(__name__)


class HeadOnly(nn.Module):
    """What trains with a frozen backbone: the segmenter's head, fed cached backbone maps (packed by
    `pack_features`). Its parameters are the segmenter's own (shared)."""

    def __init__(self, segmenter: nn.Module, shapes: Sequence[tuple[int, int, int]]) -> None:
        super().__init__()
        self.head = segmenter.head
        object.__setattr__(self, "segmenter", segmenter)  # not a submodule: its backbone stays out
        self.shapes = [tuple(shape) for shape in shapes]

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        size = (self.segmenter.input_size,) * 2
        return self.segmenter.forward_from_features(unpack_features(packed, self.shapes), size)


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss summed over the batch's images, each the mean cross-entropy of its labelled pixels; the
    images' pixel accuracies summed)."""
    per_pixel = F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX, reduction="none")
    labelled = (masks != IGNORE_INDEX).flatten(1)
    counts = labelled.sum(1).clamp(min=1)
    loss = (per_pixel.flatten(1).sum(1) / counts).sum()
    correct = ((logits.argmax(1) == masks).flatten(1) & labelled).sum(1)
    return loss, (correct / counts).sum()


def cached_features(
    segmenter: nn.Module, images: ResizedSegmentation, flipped: bool, batch_size: int, desc: str
) -> torch.Tensor:
    """Packed backbone maps [N, D, 1, 1] of every image (mirrored if ``flipped``), without gradients."""
    segmenter.eval()
    packed = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
            pixels = images.images[start : start + batch_size]
            if flipped:
                pixels = pixels[:, :, ::-1]
            packed.append(
                pack_features(segmenter.backbone_features(normalize(pixels, segmenter.preprocessing)))
            )
    return torch.cat(packed)


def feature_shapes(segmenter: nn.Module, size: int) -> list[tuple[int, int, int]]:
    with torch.inference_mode():
        features = segmenter.eval().backbone_features(torch.zeros(1, 3, size, size))
    return [tuple(f.shape[1:]) for f in features]


def predict_labels(
    runner: nn.Module, batches: Iterable[tuple[torch.Tensor, list[int]]], device: torch.device | str = "cpu"
) -> Iterable[tuple[int, np.ndarray, torch.Tensor]]:
    """(index, class index per pixel uint8 [S, S], logits [C, S, S]) per image of ``batches``."""
    with torch.inference_mode():
        for inputs, indexes in batches:
            logits = runner(inputs.to(device)).float()
            labels = logits.argmax(1).to(torch.uint8).cpu().numpy()
            for row, index in enumerate(indexes):
                yield index, labels[row], logits[row]


def evaluate_at_input_size(
    runner: nn.Module,
    batches: Iterable[tuple[torch.Tensor, list[int]]],
    images: ResizedSegmentation,
    label_names: Sequence[str],
    device: torch.device | str = "cpu",
) -> tuple[dict[str, float], float]:
    """(metrics, mean loss per image) against the masks resized to the input size (validation while
    training; `ImageSegmenter.evaluate` scores at each image's own size)."""
    confusion = np.zeros((len(label_names),) * 2, dtype=np.int64)
    loss_sum = 0.0
    for index, labels, logits in predict_labels(runner, batches, device):
        mask = images.masks[index]
        confusion += confusion_matrix(labels, mask, len(label_names))
        loss_sum += segmentation_loss(logits[None], images.target(index, False)[None].to(device))[0].item()
    return segmentation_metrics(confusion, label_names), loss_sum / max(len(images), 1)


def feature_batches(features: torch.Tensor, batch_size: int) -> Iterable[tuple[torch.Tensor, list[int]]]:
    for start in range(0, len(features), batch_size):
        yield features[start : start + batch_size], list(range(start, min(start + batch_size, len(features))))


def train_segmenter(
    segmenter: nn.Module,
    train_data,
    validation_data,
    hp: SegmenterHParams,
    model_dir: Path | None,
    fingerprint: dict,
    options: RunOptions | None = None,
) -> History:
    """Train ``segmenter`` on ``train_data`` (a `SegmentationData`); keep the epoch with the best mIoU on
    ``validation_data`` (else the last). Returns the history; ``segmenter`` holds the kept weights."""
    size = segmenter.input_size
    interpolation = segmenter.preprocessing.interpolation
    images = ResizedSegmentation(train_data, size, interpolation, "decoding training images")
    val_images = (
        ResizedSegmentation(validation_data, size, interpolation, "decoding validation images")
        if validation_data
        else None
    )
    segmenter.eval()
    if hp.train_whole_model:
        model, keep, val_inputs = segmenter, None, None

        def get(index: int, flipped: bool):
            return normalize(images.pixels(index, flipped), segmenter.preprocessing)[0], images.target(
                index, flipped
            )

    else:
        for parameter in segmenter.backbone.parameters():
            parameter.requires_grad_(False)
        model = keep = HeadOnly(segmenter, feature_shapes(segmenter, size))
        plain = cached_features(segmenter, images, False, hp.batch_size, "backbone features")
        mirrored = (
            cached_features(segmenter, images, True, hp.batch_size, "flipped features") if hp.flip else None
        )

        def get(index: int, flipped: bool):
            use_mirror = flipped and mirrored is not None
            return (mirrored if use_mirror else plain)[index], images.target(index, use_mirror)

        val_inputs = (
            cached_features(segmenter, val_images, False, hp.batch_size, "validation features")
            if val_images is not None
            else None
        )
    samples = TrainingSamples(len(images), get, hp.shuffle)

    def step(runner: nn.Module, inputs: torch.Tensor, targets: list, global_step: int) -> StepOutput:
        logits = runner(inputs)
        loss, accuracy = segmentation_loss(logits, torch.stack(targets))
        return StepOutput(loss, (accuracy.item(),))

    def optimizer(steps_per_epoch: int):
        made = backbone_scaled_sgd(model, segmenter.backbone, hp, hp.backbone_lr_scale)
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
            batches = val_images.batches(segmenter.preprocessing, hp.batch_size)
        device = next(model.parameters()).device
        with precision.autocast():
            metrics, loss = evaluate_at_input_size(
                runner, batches, val_images, train_data.label_names, device
            )
        runner.train(was_training)
        # History keeps the epoch with the best val_accuracy: for a segmenter, mIoU
        return {
            "val_loss": loss,
            "val_accuracy": metrics["mIoU"],
            "val_mIoU": metrics["mIoU"],
            "val_pixel_accuracy": metrics["pixel_accuracy"],
        }

    def train_mode() -> None:
        freeze_batchnorm(segmenter.backbone)  # a small batch's statistics would drift the pretrained ones

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
        metrics=("pixel_accuracy",),
        train_mode=train_mode,
        min_micro_batch=2,  # the head's BatchNorm (and ASPP's pooled branch) need two samples
        clip=(model, hp.clip_grad_norm),
        divergence_hint=f"lower learning_rate (now {hp.learning_rate:g})",
    )
    # the head on cached features runs on one thread (see the detector's training: on a shared 2-core CPU
    # two threads made small steps many times slower)
    with single_thread() if not hp.train_whole_model else contextlib.nullcontext():
        history = train(task, model_dir, fingerprint, options)
    segmenter.eval()
    return history


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_mIoU") is not None:
        parts.append(
            f"validation mIoU {best['val_mIoU']:.3f}, pixel accuracy {best['val_pixel_accuracy']:.3f}"
        )
    return ", ".join(parts)
