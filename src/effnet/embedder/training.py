"""Training an embedding model with a margin loss over the training identities.

Built from the classifier's training blocks (`effnet.image_classifier.training`): the same per-epoch seeds,
warm-up + cosine schedule, SGD groups, atomic per-epoch checkpoint with resume, SIGTERM handling and
best-epoch selection. What differs: the model is an `EmbeddingNet` plus a loss module holding the identity
centres, and the validation score is verification accuracy on pairs of held-out identities (the
classifier's accuracy on
training identities says little about unseen ones).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from effnet import distributed
from effnet.data import EvalTransform, ImageDataset, TrainTransform
from effnet.data.loading import FolderBatches
from effnet.embedder.losses import LOSSES
from effnet.embedder.metrics import kfold_accuracy, pair_scores
from effnet.embedder.pairs import sample_pairs
from effnet.image_classifier.fine_tuning import decoding_workers, step_seed
from effnet.image_classifier.training import (
    History,
    RunCheckpoint,
    epoch_seed,
    make_optimizer,
    warmup_cosine,
)
from effnet.models.embedding import HEADS, EmbeddingNet

log = logging.getLogger(__name__)


@dataclass
class EmbedderHParams:
    """Settings of one embedder training run. Defaults follow arcface_torch (SGD, momentum 0.9, weight decay
    5e-4, ArcFace s=64 m=0.5, 512-d, 112 px) except the learning rate: 0.1 is for batch 128 from scratch; a
    pretrained backbone fine-tuned on a small set needs less, and learns at ``backbone_lr_scale`` of it."""

    backbone: str = "efficientnet_lite0"
    head: str = "gdc"
    loss: str = "arcface"
    embedding_dim: int = 512
    input_size: int = 112
    scale: float | None = None  # None: 64 (margin losses)
    margins: tuple[float, float, float] | float | None = None  # None: the loss's defaults
    pretrained: bool = True
    dropout: float = 0.0
    drop_path_rate: float | None = None  # the backbone's stochastic depth; None: the model's default
    reduce_channels: int | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int | None = None  # None: one epoch
    backbone_lr_scale: float = 0.1  # applied to a pretrained backbone only
    # "auto": keep a pretrained backbone's BatchNorm statistics; "all": the head's BatchNorm too (then a
    # torchrun run computes exactly what one process does: no statistics of each rank's share)
    freeze_bn: bool | str = "auto"
    sync_bn: bool = False  # torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)
    flip: bool = True  # random horizontal flips in training (the verification flip test assumes them)
    val_pairs: int = 1000
    shuffle: bool = True
    seed: int = 0
    num_workers: int | None = None

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        for name in ("epochs", "batch_size", "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32 px, got {self.input_size}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.freeze_bn not in (True, False, "auto", "all"):
            raise ValueError(f"freeze_bn must be True, False, 'auto' or 'all', got {self.freeze_bn!r}")

    def to_dict(self) -> dict:
        data = asdict(self)
        if isinstance(data["margins"], tuple):
            data["margins"] = list(data["margins"])
        return data


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
) -> History:
    """Train ``network`` (and the loss's centres) on ``train``; keep the epoch with the best verification
    accuracy on ``validation`` (held-out identities), else the last one. Under torchrun every rank calls
    this with the same arguments (see the module's docstring)."""
    context = distributed.init()
    sampler = distributed.GlobalBatchSampler(
        len(train), hp.batch_size, context.rank, context.world_size, 1, hp.shuffle, hp.seed
    )
    batches = FolderBatches(train, sampler, num_workers=decoding_workers(hp.num_workers), seed=hp.seed)
    # a short last batch is dropped (BatchNorm1d in the head needs >= 2 samples per rank), unless it is all
    full_only = len(train) > hp.batch_size
    steps = math.ceil(len(train) / hp.batch_size)
    module = TrainingModule(network, loss_module)
    optimizer = make_optimizer(module, hp, hp.backbone_lr_scale if pretrained else 1.0)  # type: ignore[arg-type]
    warmup = hp.warmup_steps if hp.warmup_steps is not None else min(steps, 500)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, steps * hp.epochs))
    network.to(memory_format=torch.channels_last)
    checkpoint = RunCheckpoint(model_dir, fingerprint)
    history, start = checkpoint.resume(module, optimizer, scheduler)
    runner = distributed.wrap_model(module, context, hp.sync_bn)  # DDP: rank 0's weights on every rank
    val_pairs = sample_pairs(validation, hp.val_pairs, hp.seed) if validation is not None else None
    freeze = pretrained if hp.freeze_bn == "auto" else bool(hp.freeze_bn)
    for epoch in range(start, hp.epochs + 1):
        began = time.perf_counter()
        seed = epoch_seed(hp.seed, epoch)
        transform = (
            TrainTransform(network.preprocessing, seed=seed, random_crop=False, flip=True)
            if hp.flip
            else EvalTransform(network.preprocessing)
        )  # its rng is replaced per sample, from (seed, epoch, index): the same flips on any rank
        runner.train()
        if freeze:
            _freeze_bn_statistics(network if hp.freeze_bn == "all" else network.backbone)
        sums = [0.0, 0.0, 0.0]  # loss x samples, correct, samples (this rank's share)
        bar = tqdm(
            total=len(train), desc=f"epoch {epoch}/{hp.epochs}", unit="img", dynamic_ncols=True,
            disable=not context.is_main,
        )  # fmt: skip
        for step, _, images, labels, count in batches.epoch(epoch, transform):
            if (full_only and count < hp.batch_size) or count < 2 * context.world_size:
                continue  # decided on the global count: every rank skips the same step
            torch.manual_seed(step_seed(hp.seed, (epoch - 1) * steps + step, context.rank, 0))
            x = images.to(context.device).contiguous(memory_format=torch.channels_last)
            y = labels.to(context.device).long()
            loss, logits = runner(x, y)
            # mean over this rank's share x share / global count x world size (DDP averages over ranks):
            # the gradient of the global batch's mean loss
            scaled = loss * (len(y) * context.world_size / count)
            optimizer.zero_grad(set_to_none=True)
            scaled.backward()
            optimizer.step()
            scheduler.step()
            sums[0] += loss.item() * len(y)
            sums[1] += (logits.argmax(1) == y).sum().item()
            sums[2] += len(y)
            bar.update(count)
            if context.is_main:
                bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}")
        bar.close()
        total_loss, correct, seen = distributed.all_reduce_sum(sums)
        if not math.isfinite(total_loss):
            raise FloatingPointError(
                f"the training loss became {total_loss} in epoch {epoch}; lower learning_rate "
                f"(now {hp.learning_rate})"
            )
        row = {
            "epoch": epoch,
            "train_loss": total_loss / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
        }
        val_accuracy = val_loss = val_auc = None
        if val_pairs is not None:
            # rank 0 validates (all held-out embeddings are needed at once) and shares its score, so every
            # rank records the same history and keeps the same best epoch
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
        row["seconds"] = time.perf_counter() - began
        history.record(row, network.state_dict)
        if context.is_main:
            log.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)})
            checkpoint.save(epoch, module, optimizer, scheduler, history)
        distributed.barrier()  # a rank that resumes later reads a complete checkpoint
    network.load_state_dict(history.best_state)
    network.to("cpu").eval()
    return history


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_accuracy") is not None:
        parts.append(f"val verification accuracy {best['val_accuracy']:.4f}")
    return ", ".join(parts)
