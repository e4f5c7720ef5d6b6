"""Fine-tuning the whole network, on one process or many: the classifier's `effnet.training.TrainingTask`.

`fine_tune` trains with augmentation, a warm-up + cosine schedule and label smoothing on
`effnet.training.train`, the loop every task shares (global batch, precision, accumulation, DDP, step
checkpoints, exact resume, stop signals); what the classifier brings is its cross-entropy step, its
transforms, its optimizer groups and a sharded validation.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from effnet import distributed
from effnet.data import EvalTransform, TrainTransform
from effnet.image_classifier.hparams import HParams
from effnet.training.checkpoints import plain_state, resume_training
from effnet.training.history import History
from effnet.training.loop import (
    StepOutput,
    TrainingTask,
    checkpoint_or_stop,
    decoding_workers,
    freeze_batchnorm,
    optimizer_step,
    settings_of,
    train,
)
from effnet.training.options import CPU_BF16_VARIABLE, PRECISIONS, Precision, RunOptions
from effnet.training.schedule import make_optimizer, step_seed, warmup_cosine

# moved to effnet.training; importable from here as before
__all__ = [
    "CPU_BF16_VARIABLE",
    "PRECISIONS",
    "Precision",
    "RunOptions",
    "checkpoint_or_stop",
    "decoding_workers",
    "evaluate_sharded",
    "fine_tune",
    "optimizer_step",
    "plain_state",
    "resume_training",
    "step_seed",
]


def evaluate_sharded(
    model: nn.Module, data, hp: HParams, context, precision: Precision
) -> tuple[float, float]:
    """(loss, accuracy) over ``data``, each rank evaluating its share, sums all-reduced."""
    transform = EvalTransform(distributed.unwrap(model).preprocessing)
    if hasattr(data, "eval_batches"):
        batches = data.eval_batches(transform, hp.batch_size, context.rank, context.world_size)
    else:
        from effnet.data import ImageDataset

        share = ImageDataset.from_samples(
            data.paths[context.rank :: context.world_size],
            data.labels[context.rank :: context.world_size],
            data.index_to_label,
        )
        batches = (
            (torch.from_numpy(x), torch.from_numpy(y))
            for x, y in share.iter_batches(
                transform, hp.batch_size, num_workers=hp.num_workers, progress=False
            )
        )
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    with torch.inference_mode(), precision.autocast():
        for images, labels in batches:
            x = images.to(context.device).contiguous(memory_format=torch.channels_last)
            y = labels.to(context.device).long()
            logits = model(x).float()
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    loss_sum, correct, count = distributed.all_reduce_sum([loss_sum, correct, count])
    return loss_sum / max(count, 1), correct / max(count, 1)


def fine_tune(
    model: nn.Module,
    train_data,
    val,
    hp: HParams,
    model_dir: Path | None,
    fingerprint: dict,
    options: RunOptions | None = None,
) -> History:
    """Train the whole network; returns the history, with ``model`` holding the best epoch's weights.

    ``train_data`` / ``val``: `ImageDataset` or `effnet.data.shards.ShardDataset`. Under torchrun every rank
    calls this with the same arguments; only rank 0 shows progress and writes checkpoints.
    """
    pretrained = getattr(model, "weights_report", None) is not None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing, reduction="sum")

    def step(runner: nn.Module, images: torch.Tensor, labels: torch.Tensor, global_step: int) -> StepOutput:
        logits = runner(images)
        labels = labels.long()
        return StepOutput(loss_fn(logits.float(), labels), ((logits.argmax(1) == labels).sum().item(),))

    def optimizer(steps_per_epoch: int):
        lr = distributed.scaled_learning_rate(hp.learning_rate, hp.batch_size, hp.lr_base_batch)
        scale = hp.backbone_lr_scale if pretrained else 1.0
        made = make_optimizer(model, replace(hp, learning_rate=lr), scale)
        schedule = warmup_cosine(hp.warmup_steps, steps_per_epoch * hp.epochs)
        return made, torch.optim.lr_scheduler.LambdaLR(made, schedule)

    def transform(epoch: int):
        if not hp.use_augmentation:
            return EvalTransform(model.preprocessing)
        return TrainTransform(
            model.preprocessing,
            seed=0,  # replaced per sample, from (seed, epoch, index)
            scale=hp.crop_scale,
            flip=hp.flip,
            brightness=hp.color_jitter,
            contrast=hp.color_jitter,
            saturation=hp.color_jitter,
        )

    def validate(runner: nn.Module, context, precision: Precision) -> dict:
        if val is None:
            return {"val_loss": None, "val_accuracy": None}
        loss, accuracy = evaluate_sharded(runner, val, hp, context, precision)
        return {"val_loss": loss, "val_accuracy": accuracy}

    task = TrainingTask(
        model,
        train_data,
        step,
        optimizer,
        transform,
        validate,
        **settings_of(hp),
        train_mode=(lambda: freeze_batchnorm(model)) if hp.bn_frozen(pretrained) else None,
        early_stopping_patience=hp.early_stopping_patience,
    )
    return train(task, model_dir, fingerprint, options)
