"""Training a segmenter on the shared loop (`effnet.training.train`): the segmenter's `TrainingTask`.

Two modes, one loop (`effnet.training.dense_training`), as for the detector: fine-tuning
(``train_whole_model=True``) trains the whole network on resized images and masks, flipped at random; with a
frozen backbone (the default) the head trains on the backbone's two cached maps (stride 8 and the output
stride) of every training image, and of its mirror image when flipping.

The task brings: per-pixel cross-entropy (255 ignored; each image's mean over its labelled pixels) and
validation by mIoU; the SGD with a warm-up and cosine schedule is the shared one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from effnet.image_segmenter.hparams import SegmenterHParams
from effnet.image_segmenter.metrics import IGNORE_INDEX, confusion_matrix, segmentation_metrics
from effnet.image_segmenter.samples import ResizedSegmentation
from effnet.training.dense_training import train_dense
from effnet.training.history import History
from effnet.training.loop import StepOutput
from effnet.training.options import RunOptions

log = logging.getLogger(__name__)


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss summed over the batch's images, each the mean cross-entropy of its labelled pixels; the
    images' pixel accuracies summed)."""
    per_pixel = F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX, reduction="none")
    labelled = (masks != IGNORE_INDEX).flatten(1)
    counts = labelled.sum(1).clamp(min=1)
    loss = (per_pixel.flatten(1).sum(1) / counts).sum()
    correct = ((logits.argmax(1) == masks).flatten(1) & labelled).sum(1)
    return loss, (correct / counts).sum()


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

    def step(runner: nn.Module, inputs: torch.Tensor, targets: list, global_step: int) -> StepOutput:
        logits = runner(inputs)
        loss, accuracy = segmentation_loss(logits, torch.stack(targets))
        return StepOutput(loss, (accuracy.item(),))

    def score(runner: nn.Module, batches, device) -> dict:
        metrics, loss = evaluate_at_input_size(runner, batches, val_images, train_data.label_names, device)
        # History keeps the epoch with the best val_accuracy: for a segmenter, mIoU
        return {
            "val_loss": loss,
            "val_accuracy": metrics["mIoU"],
            "val_mIoU": metrics["mIoU"],
            "val_pixel_accuracy": metrics["pixel_accuracy"],
        }

    return train_dense(
        segmenter,
        images,
        val_images,
        hp,
        step,
        score,
        ("pixel_accuracy",),
        model_dir,
        fingerprint,
        options,
        min_micro_batch=2,  # the head's BatchNorm (and ASPP's pooled branch) need two samples
    )


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_mIoU") is not None:
        parts.append(
            f"validation mIoU {best['val_mIoU']:.3f}, pixel accuracy {best['val_pixel_accuracy']:.3f}"
        )
    return ", ".join(parts)
