"""Training an embedding model with a margin loss over the training identities.

Built from the classifier's training blocks (`effnet.image_classifier.training` and `.fine_tuning`): the
same derived seeds (data order, augmentation per sample, dropout per step), warm-up + cosine schedule, SGD
groups, `RunOptions` (precision, gradient accumulation, step checkpoints; `effnet.train_state`) with exact
mid-epoch resume, SIGTERM handling and best-epoch selection. What differs: the model is an `EmbeddingNet`
plus a loss module holding the identity centres (whose margin may warm up), and the validation score is
verification accuracy on pairs of held-out identities (the classifier's accuracy on training identities
says little about unseen ones).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from effnet import distributed
from effnet.data import EvalTransform, ImageDataset, TrainTransform
from effnet.data.loading import FolderBatches
from effnet.embedder.hparams import EmbedderHParams
from effnet.embedder.losses import MarginLoss, margin_fraction
from effnet.embedder.metrics import kfold_accuracy, pair_scores
from effnet.embedder.pairs import sample_pairs
from effnet.image_classifier.fine_tuning import (
    Precision,
    RunOptions,
    checkpoint_or_stop,
    decoding_workers,
    optimizer_step,
    plain_state,
    resume_training,
    step_seed,
    stop_requests,
    training_state,
)
from effnet.image_classifier.training import History, epoch_seed, make_optimizer, warmup_cosine
from effnet.models.embedding import EmbeddingNet
from effnet.train_state import StepCheckpoints

log = logging.getLogger(__name__)


class TrainingModule(nn.Module):
    """What the optimizer and checkpoint see: the backbone, and as ``classifier`` (full learning rate in
    `make_optimizer`) the new embedding head and the loss's identity centres."""

    def __init__(self, network: EmbeddingNet, loss: nn.Module) -> None:
        super().__init__()
        self.backbone = network.backbone
        self.classifier = nn.ModuleDict({"head": network.head, "loss": loss})
        object.__setattr__(self, "network", network)  # not a submodule: its parameters are the ones above

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean margin loss, logits): one module through which DDP sees every trained parameter."""
        return self.classifier["loss"](self.network(images), labels)


def _freeze_bn_statistics(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


CROP_RATIO = (7 / 8, 8 / 7)  # random crops stay close to square: aligned faces, glyphs


def train_transform(preprocessing, hp: EmbedderHParams, seed: int):
    """The training transform of ``hp`` (flips, small random crops) or, with both off, the eval transform.
    The batch loader replaces its rng per sample, from (seed, epoch, index): the same draws on any rank,
    after any resume."""
    if not hp.flip and hp.crop_scale is None:
        return EvalTransform(preprocessing)
    return TrainTransform(
        preprocessing,
        seed=seed,
        random_crop=hp.crop_scale is not None,
        scale=(hp.crop_scale or 1.0, 1.0),
        ratio=CROP_RATIO,
        flip=hp.flip,
    )


def validation_score(network: EmbeddingNet, data: ImageDataset, pairs, hp: EmbedderHParams) -> dict:
    """Verification accuracy (10-fold) on sampled pairs of held-out identities, without the flip test (it
    doubles the cost and rarely changes which epoch is best)."""
    from effnet.embedder.embedding import embed_paths

    embeddings = embed_paths(
        network, data, flip=False, batch_size=hp.batch_size, num_workers=hp.num_workers, progress=False
    )
    scores = pair_scores(embeddings, pairs.pairs)
    from sklearn.metrics import roc_auc_score

    return {**kfold_accuracy(scores, pairs.same), "auc": float(roc_auc_score(pairs.same, scores))}


def train_embedder(
    network: EmbeddingNet,
    loss_module: nn.Module,
    train: ImageDataset,
    validation: ImageDataset | None,
    hp: EmbedderHParams,
    model_dir: Path | None,
    fingerprint: dict,
    pretrained: bool,
    options: RunOptions | None = None,
) -> History:
    """Train ``network`` (and the loss's centres) on ``train``; keep the epoch with the best verification
    accuracy on ``validation`` (held-out identities), else the last one. Under torchrun every rank calls
    this with the same arguments (see the module's docstring).

    ``options`` (`effnet.image_classifier.fine_tuning.RunOptions`): precision, gradient accumulation, step
    checkpoints every N optimizer steps (a run stopped anywhere resumes to the weights of an uninterrupted
    one), device. Checkpoints go to ``model_dir/checkpoints`` at every epoch's end too.
    """
    options = options or RunOptions()
    options.validate()
    context = distributed.init(options.device)
    precision = Precision(options.precision, context.device)
    sampler = distributed.GlobalBatchSampler(
        len(train), hp.batch_size, context.rank, context.world_size, options.accumulate, hp.shuffle, hp.seed
    )
    batches = FolderBatches(train, sampler, num_workers=decoding_workers(hp.num_workers), seed=hp.seed)
    steps = batches.steps_per_epoch
    # a short last batch is dropped (BatchNorm1d in the head needs >= 2 samples per micro-batch), unless it
    # is all there is; decided on the global count, so every rank and micro-step skips the same step
    full_only = len(train) > hp.batch_size
    smallest = 2 * context.world_size * options.accumulate
    module = TrainingModule(network, loss_module)
    optimizer = make_optimizer(module, hp, hp.backbone_lr_scale if pretrained else 1.0)  # type: ignore[arg-type]
    warmup = hp.warmup_steps if hp.warmup_steps is not None else min(steps, 500)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, steps * hp.epochs))
    margin_loss = loss_module if isinstance(loss_module, MarginLoss) else None
    margin_steps = round(hp.margin_warmup_epochs * steps)
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    module.to(device=context.device, memory_format=memory_format)

    checkpoints = StepCheckpoints(model_dir, fingerprint, options.keep_checkpoints)
    resumed, history, epoch, start_step, sums = resume_training(
        checkpoints, module, optimizer, scheduler, precision, context.is_main
    )
    if resumed and context.is_main and epoch <= hp.epochs:
        print(f"resuming at epoch {epoch}, step {start_step}/{steps}")
    wrapped = distributed.wrap_model(module, context, hp.sync_bn or options.sync_bn)  # DDP: rank 0's weights
    runner = torch.compile(wrapped) if options.compile else wrapped
    val_pairs = sample_pairs(validation, hp.val_pairs, hp.seed) if validation is not None else None
    freeze = pretrained if hp.freeze_bn == "auto" else bool(hp.freeze_bn)

    def save(next_epoch: int, next_step: int, epoch_sums: list[float]) -> None:
        if checkpoints.folder is None:
            return
        reduced = distributed.all_reduce_sum(epoch_sums)  # every rank calls this: it is a collective
        if context.is_main:
            state = training_state(module, optimizer, scheduler, precision, history, next_epoch, next_step)
            checkpoints.save((next_epoch - 1) * steps + next_step, {**state, "sums": reduced})
        distributed.barrier()  # a rank that resumes later reads a complete checkpoint

    with stop_requests() as stop:
        while epoch <= hp.epochs:
            began = time.perf_counter()
            transform = train_transform(network.preprocessing, hp, epoch_seed(hp.seed, epoch))
            runner.train()
            if freeze:
                _freeze_bn_statistics(network if hp.freeze_bn == "all" else network.backbone)
            # sums: loss x samples, correct, samples (this rank's share)
            bar = tqdm(
                total=steps, initial=start_step, desc=f"epoch {epoch}/{hp.epochs}", unit="step",
                dynamic_ncols=True, disable=not context.is_main,
            )  # fmt: skip
            for step, micro, images, labels, count in batches.epoch(epoch, transform, start_step):
                if (full_only and count < hp.batch_size) or count < smallest:
                    continue
                global_step = (epoch - 1) * steps + step
                torch.manual_seed(step_seed(hp.seed, global_step, context.rank, micro))
                if margin_loss is not None:  # a function of the step: a resumed run continues the same ramp
                    margin_loss.margin_fraction = margin_fraction(global_step, margin_steps)
                x = images.to(context.device, non_blocking=True).contiguous(memory_format=memory_format)
                y = labels.to(context.device, non_blocking=True).long()
                last_micro = micro == options.accumulate - 1
                no_sync = context.distributed and not last_micro
                with wrapped.no_sync() if no_sync else contextlib.nullcontext():
                    with precision.autocast():
                        loss, logits = runner(x, y)
                    # mean over this micro-batch x its share of the global count x world size (DDP averages
                    # over ranks): the gradient of the global batch's mean loss, however it is split
                    precision.scaler.scale(loss.float() * (len(y) * context.world_size / count)).backward()
                sums[0] += loss.item() * len(y)
                sums[1] += (logits.argmax(1) == y).sum().item()
                sums[2] += len(y)
                if not last_micro:
                    continue
                clip = None if hp.clip_grad_norm is None else (network.parameters(), hp.clip_grad_norm)
                optimizer_step(precision, optimizer, scheduler, clip)
                bar.update(1)
                if context.is_main:
                    bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}")
                if checkpoint_or_stop(stop, options, global_step, step + 1 == steps):
                    save(epoch, step + 1, sums)
                if stop["stop"]:
                    bar.close()
                    raise KeyboardInterrupt
            bar.close()
            total_loss, correct, seen = distributed.all_reduce_sum(sums)
            if not math.isfinite(total_loss):
                raise FloatingPointError(
                    f"the training loss became {total_loss} in epoch {epoch}; lower learning_rate "
                    f"(now {hp.learning_rate}) or set clip_grad_norm"
                )
            row = {
                "epoch": epoch,
                "train_loss": total_loss / max(seen, 1),
                "train_accuracy": correct / max(seen, 1),
            }
            val_accuracy = val_loss = val_auc = None
            if val_pairs is not None:
                # rank 0 validates (all held-out embeddings are needed at once) and shares its score, so
                # every rank records the same history and keeps the same best epoch
                score = validation_score(network, validation, val_pairs, hp) if context.is_main else None
                score = distributed.broadcast_object(score)
                # History ranks epochs by (val_accuracy, -val_loss): 1 - AUC breaks accuracy ties
                val_accuracy, val_auc, val_loss = score["accuracy"], score["auc"], 1.0 - score["auc"]
            row.update(
                val_accuracy=val_accuracy,
                val_auc=val_auc,
                val_loss=val_loss,
                lr=max(g["lr"] for g in optimizer.param_groups),
            )
            if margin_loss is not None:
                row["margin_fraction"] = margin_loss.margin_fraction  # of the epoch's last step
            row["seconds"] = time.perf_counter() - began
            history.record(row, lambda: plain_state(network))
            if context.is_main:
                log.info(
                    "epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
                )
            epoch, start_step, sums = epoch + 1, 0, [0.0, 0.0, 0.0]
            save(epoch, 0, sums)
    network.load_state_dict(history.best_state)
    network.to("cpu").eval()
    return history


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_accuracy") is not None:
        parts.append(f"val verification accuracy {best['val_accuracy']:.4f}")
    return ", ".join(parts)
