"""Training a detector on the shared loop (`effnet.training.train`): the detector's `TrainingTask`.

Two modes, one loop (`effnet.training.dense_training`): fine-tuning (``train_whole_model=True``) trains the
whole network on resized images, flipped at random; with a frozen backbone (the default) the neck and heads
train on the backbone's cached feature maps.

The task brings: target assignment (`effnet.object_detector.targets`), the focal + box loss
(`effnet.object_detector.losses`) and validation by COCO AP; the SGD with a warm-up and cosine schedule is the
shared one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from effnet.object_detector.evaluation import Detections, coco_metrics
from effnet.object_detector.hparams import DetectorHParams
from effnet.object_detector.losses import LossSettings, detection_loss
from effnet.object_detector.prediction import detections_from_outputs, to_image_pixels
from effnet.object_detector.samples import ResizedImages
from effnet.object_detector.targets import assign_batch
from effnet.training.dense_training import train_dense
from effnet.training.history import History
from effnet.training.loop import StepOutput
from effnet.training.options import RunOptions

log = logging.getLogger(__name__)
Heads = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def predict(
    detector: nn.Module,
    heads: Heads,
    batches: Iterable[tuple[torch.Tensor, list[int]]],
    hp: DetectorHParams,
    device: torch.device | str = "cpu",
) -> Iterable[tuple[int, Detections, torch.Tensor, torch.Tensor]]:
    """(index, detections at the input size, class logits, box deltas) per image of ``batches``."""
    with torch.inference_mode():
        for inputs, indexes in batches:
            class_logits, box_deltas = heads(inputs.to(device))
            found = detections_from_outputs(
                detector, class_logits, box_deltas, hp.score_threshold, hp.iou_threshold, hp.max_detections
            )
            for row, index in enumerate(indexes):
                yield index, found[row], class_logits[row], box_deltas[row]


def evaluate_predictions(
    detector: nn.Module,
    heads: Heads,
    batches: Iterable[tuple[torch.Tensor, list[int]]],
    images: ResizedImages,
    data,
    hp: DetectorHParams,
    device: torch.device | str = "cpu",
) -> tuple[dict, float, dict[int, Detections]]:
    """(COCO metrics, mean loss per image, detections in image pixels by sample index) of the detector on
    ``images`` (decoded from ``data``)."""
    settings = LossSettings.for_detector(detector.spec.name)
    anchors = detector.anchor_boxes().to(device)
    found, ids, loss_sum = [], [], 0.0
    for index, detections, class_logits, box_deltas in predict(detector, heads, batches, hp, device):
        sample_index = images.kept[index]
        sample = data.samples[sample_index]
        found.append(to_image_pixels(detections, images.size, sample.width, sample.height))
        ids.append(sample_index)
        assigned = assign_batch(anchors, [images.target(index, False)], detector.spec.box_coder_weights)
        loss_sum += detection_loss(class_logits[None], box_deltas[None], assigned, settings).total.item()
    metrics = coco_metrics(data.to_coco_dict(), found, ids, data.label_names)
    return metrics, loss_sum / max(len(ids), 1), dict(zip(ids, found, strict=True))


def train_detector(
    detector: nn.Module,
    train_data,
    validation_data,
    hp: DetectorHParams,
    model_dir: Path | None,
    fingerprint: dict,
    options: RunOptions | None = None,
) -> History:
    """Train ``detector`` on ``train_data`` (a `DetectionData`); keep the epoch with the best COCO AP on
    ``validation_data`` (else the last). Returns the history; ``detector`` holds the kept weights."""
    size = detector.input_size
    settings = LossSettings.for_detector(detector.spec.name)
    weights = detector.spec.box_coder_weights
    images = ResizedImages(train_data, size, "decoding training images")
    val_images = (
        ResizedImages(validation_data, size, "decoding validation images") if validation_data else None
    )

    def step(runner: nn.Module, inputs: torch.Tensor, targets: list, global_step: int) -> StepOutput:
        class_logits, box_deltas = runner(inputs)
        assigned = assign_batch(detector.anchor_boxes().to(inputs.device), targets, weights)
        loss = detection_loss(class_logits, box_deltas, assigned, settings)
        count = len(inputs)
        return StepOutput(loss.total * count, (loss.classes.item() * count, loss.boxes.item() * count))

    def score(runner: nn.Module, batches, device) -> dict:
        metrics, loss, _ = evaluate_predictions(
            detector, runner, batches, val_images, validation_data, hp, device
        )
        # History keeps the epoch with the best val_accuracy: for a detector, COCO AP
        return {
            "val_loss": loss,
            "val_accuracy": metrics["AP"],
            "val_AP": metrics["AP"],
            "val_AP50": metrics["AP50"],
        }

    return train_dense(
        detector,
        images,
        val_images,
        hp,
        step,
        score,
        ("class_loss", "box_loss"),
        model_dir,
        fingerprint,
        options,
    )


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_AP") is not None:
        parts.append(f"validation AP {best['val_AP']:.3f}, AP50 {best['val_AP50']:.3f}")
    return ", ".join(parts)
