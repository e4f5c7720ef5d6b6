"""Training a detector on the shared loop (`effnet.training.train`): the detector's `TrainingTask`.

Two modes, one loop. Fine-tuning (``train_whole_model=True``) trains the whole network on resized images,
flipped at random. With a frozen backbone (the default) the backbone's feature maps of every training image
(and of its mirror image, when flipping) are computed once and held in memory; the neck and heads then train
on those, so an epoch costs only their share of the network.

The task brings: target assignment (`effnet.object_detector.targets`), the focal + box loss
(`effnet.object_detector.losses`), SGD with a warm-up and cosine schedule, and validation by COCO AP.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from effnet.object_detector.evaluation import Detections, coco_metrics
from effnet.object_detector.hparams import DetectorHParams
from effnet.object_detector.losses import LossSettings, detection_loss
from effnet.object_detector.prediction import detections_from_outputs, to_image_pixels
from effnet.object_detector.samples import Flips, ResizedImages, TrainingSamples, normalize
from effnet.object_detector.targets import assign_batch
from effnet.training.control import single_thread
from effnet.training.history import History
from effnet.training.loop import StepOutput, TrainingTask, freeze_batchnorm, train
from effnet.training.options import RunOptions
from effnet.training.samples import pack_features, unpack_features
from effnet.training.schedule import backbone_scaled_sgd, warmup_cosine

log = logging.getLogger(__name__)
Heads = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class NeckAndHeads(nn.Module):
    """What trains with a frozen backbone: every part of the detector but its backbone, fed cached
    backbone features (packed by `pack_features`). Its parameters are the detector's own (shared)."""

    def __init__(self, detector: nn.Module, shapes: Sequence[tuple[int, int, int]]) -> None:
        super().__init__()
        for name, child in detector.named_children():
            if name != "backbone":
                self.add_module(name, child)
        for name, parameter in detector.named_parameters(recurse=False):
            self.register_parameter(name, parameter)
        object.__setattr__(self, "detector", detector)  # not a submodule: its backbone stays out
        self.shapes = [tuple(shape) for shape in shapes]

    def forward(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detector.forward_from_features(unpack_features(packed, self.shapes))


def backbone_features(
    detector: nn.Module, images: ResizedImages, flipped: bool, batch_size: int, desc: str
) -> torch.Tensor:
    """Packed backbone features [N, D, 1, 1] of every image (mirrored if ``flipped``), without gradients."""
    detector.eval()
    packed = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
            pixels = images.images[start : start + batch_size]
            if flipped:
                pixels = pixels[:, :, ::-1]
            packed.append(
                pack_features(detector.backbone_features(normalize(pixels, detector.preprocessing)))
            )
    return torch.cat(packed)


def feature_shapes(detector: nn.Module, size: int) -> list[tuple[int, int, int]]:
    with torch.inference_mode():
        features = detector.eval().backbone_features(torch.zeros(1, 3, size, size))
    return [tuple(f.shape[1:]) for f in features]


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


def feature_batches(features: torch.Tensor, batch_size: int) -> Iterable[tuple[torch.Tensor, list[int]]]:
    for start in range(0, len(features), batch_size):
        yield features[start : start + batch_size], list(range(start, min(start + batch_size, len(features))))


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
    flip_probability = 0.5 if hp.flip else 0.0
    detector.eval()

    if hp.train_whole_model:
        model, keep = detector, None

        def get(index: int, flipped: bool):
            pixels = images.images[index : index + 1]
            if flipped:
                pixels = pixels[:, :, ::-1]
            return normalize(pixels, detector.preprocessing)[0], images.target(index, flipped)

        val_inputs = None
    else:
        for parameter in detector.backbone.parameters():
            parameter.requires_grad_(False)
        shapes = feature_shapes(detector, size)
        model = keep = NeckAndHeads(detector, shapes)
        plain = backbone_features(detector, images, False, hp.batch_size, "backbone features")
        mirrored = (
            backbone_features(detector, images, True, hp.batch_size, "flipped features") if hp.flip else None
        )

        def get(index: int, flipped: bool):
            cached = mirrored if flipped and mirrored is not None else plain
            return cached[index], images.target(index, flipped and mirrored is not None)

        val_inputs = (
            backbone_features(detector, val_images, False, hp.batch_size, "validation features")
            if val_images is not None
            else None
        )
    samples = TrainingSamples(len(images), get, hp.shuffle)

    def step(runner: nn.Module, inputs: torch.Tensor, targets: list, global_step: int) -> StepOutput:
        class_logits, box_deltas = runner(inputs)
        assigned = assign_batch(detector.anchor_boxes().to(inputs.device), targets, weights)
        loss = detection_loss(class_logits, box_deltas, assigned, settings)
        count = len(inputs)
        return StepOutput(loss.total * count, (loss.classes.item() * count, loss.boxes.item() * count))

    def optimizer(steps_per_epoch: int):
        made = backbone_scaled_sgd(model, detector.backbone, hp, hp.backbone_lr_scale)
        warmup = round(hp.warmup_epochs * steps_per_epoch)
        schedule = warmup_cosine(warmup, steps_per_epoch * hp.epochs)
        return made, torch.optim.lr_scheduler.LambdaLR(made, schedule)

    def validate(runner: nn.Module, context, precision) -> dict:
        if val_images is None:
            return {"val_loss": None, "val_accuracy": None}
        was_training = runner.training
        runner.eval()
        if val_inputs is not None:
            batches = feature_batches(val_inputs, hp.batch_size)
        else:
            batches = val_images.batches(detector.preprocessing, hp.batch_size)
        device = next(model.parameters()).device
        with precision.autocast():
            metrics, loss, _ = evaluate_predictions(
                detector, runner, batches, val_images, validation_data, hp, device
            )
        runner.train(was_training)
        # History keeps the epoch with the best val_accuracy: for a detector, COCO AP
        return {
            "val_loss": loss,
            "val_accuracy": metrics["AP"],
            "val_AP": metrics["AP"],
            "val_AP50": metrics["AP50"],
        }

    def train_mode() -> None:
        freeze_batchnorm(detector.backbone)  # a small batch's statistics would drift the pretrained ones

    task = TrainingTask(
        model,
        samples,
        step,
        optimizer,
        lambda epoch: Flips(flip_probability, hp.seed, epoch),
        validate,
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        seed=hp.seed,
        shuffle=hp.shuffle,
        num_workers=0,
        keep=keep,
        metrics=("class_loss", "box_loss"),
        train_mode=train_mode,
        clip=(model, hp.clip_grad_norm),
        divergence_hint=f"lower learning_rate (now {hp.learning_rate:g})",
    )
    # the neck and heads on cached features run on one thread: on a 2-core CPU with another process busy,
    # two threads made a Lite0 step at 320 px 40-70x slower (10-16 s vs 0.24 s), and unloaded one thread
    # kept pace with two (0.24 s at 320 px vs 0.077 s at 192 px, ~0.36x the pixels)
    with single_thread() if not hp.train_whole_model else contextlib.nullcontext():
        history = train(task, model_dir, fingerprint, options)
    detector.eval()
    return history


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_AP") is not None:
        parts.append(f"validation AP {best['val_AP']:.3f}, AP50 {best['val_AP50']:.3f}")
    return ", ".join(parts)
