"""Training an embedding model with a margin loss over the training identities: the embedder's
`effnet.training.TrainingTask`.

The shared loop (`effnet.training.train`) brings the derived seeds (data order, augmentation per sample,
dropout per step), `RunOptions` (precision, gradient accumulation, step checkpoints) with exact mid-epoch
resume, SIGTERM handling and best-epoch selection. What the embedder brings: the model is an `EmbeddingNet`
plus a loss module holding the identity centres (whose margin may warm up), and the validation score is
verification accuracy on pairs of held-out identities (the classifier's accuracy on training identities
says little about unseen ones).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from effnet import distributed
from effnet.data import EvalTransform, ImageDataset, TrainTransform
from effnet.embedder.hparams import EmbedderHParams
from effnet.embedder.losses import MarginLoss, margin_fraction
from effnet.embedder.metrics import kfold_accuracy, pair_scores
from effnet.embedder.pairs import sample_pairs
from effnet.models.embedding import EmbeddingNet
from effnet.training.history import History
from effnet.training.loop import StepOutput, TrainingTask, freeze_batchnorm, settings_of, train
from effnet.training.options import RunOptions
from effnet.training.schedule import epoch_seed, make_optimizer, warmup_cosine

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
    train_data: ImageDataset,
    validation: ImageDataset | None,
    hp: EmbedderHParams,
    model_dir: Path | None,
    fingerprint: dict,
    pretrained: bool,
    options: RunOptions | None = None,
) -> History:
    """Train ``network`` (and the loss's centres) on ``train_data``; keep the epoch with the best verification
    accuracy on ``validation`` (held-out identities), else the last one. Under torchrun every rank calls
    this with the same arguments (see the module's docstring).

    ``options`` (`effnet.training.RunOptions`): precision, gradient accumulation, step checkpoints every N
    optimizer steps (a run stopped anywhere resumes to the weights of an uninterrupted one), device.
    Checkpoints go to ``model_dir/checkpoints`` at every epoch's end too.
    """
    module = TrainingModule(network, loss_module)
    margin_loss = loss_module if isinstance(loss_module, MarginLoss) else None
    val_pairs = sample_pairs(validation, hp.val_pairs, hp.seed) if validation is not None else None
    freeze = pretrained if hp.freeze_bn == "auto" else bool(hp.freeze_bn)
    margin_steps = 0

    def optimizer(steps_per_epoch: int):
        nonlocal margin_steps
        margin_steps = round(hp.margin_warmup_epochs * steps_per_epoch)
        made = make_optimizer(module, hp, hp.backbone_lr_scale if pretrained else 1.0)  # type: ignore[arg-type]
        warmup = hp.warmup_steps if hp.warmup_steps is not None else min(steps_per_epoch, 500)
        schedule = warmup_cosine(warmup, steps_per_epoch * hp.epochs)
        return made, torch.optim.lr_scheduler.LambdaLR(made, schedule)

    def step(runner: nn.Module, images: torch.Tensor, labels: torch.Tensor, global_step: int) -> StepOutput:
        if margin_loss is not None:  # a function of the step: a resumed run continues the same ramp
            margin_loss.margin_fraction = margin_fraction(global_step, margin_steps)
        labels = labels.long()
        loss, logits = runner(images, labels)  # the mean over the micro-batch
        return StepOutput(loss.float() * len(labels), ((logits.argmax(1) == labels).sum().item(),))

    def validate(runner: nn.Module, context, precision) -> dict:
        if val_pairs is None:
            return {"val_accuracy": None, "val_auc": None, "val_loss": None}
        # rank 0 validates (all held-out embeddings are needed at once) and shares its score, so every rank
        # records the same history and keeps the same best epoch
        score = validation_score(network, validation, val_pairs, hp) if context.is_main else None
        score = distributed.broadcast_object(score)
        # History ranks epochs by (val_accuracy, -val_loss): 1 - AUC breaks accuracy ties
        return {"val_accuracy": score["accuracy"], "val_auc": score["auc"], "val_loss": 1.0 - score["auc"]}

    def train_mode() -> None:
        if freeze:
            freeze_batchnorm(network if hp.freeze_bn == "all" else network.backbone)

    def transform(epoch: int):
        return train_transform(network.preprocessing, hp, epoch_seed(hp.seed, epoch))

    task = TrainingTask(
        module,
        train_data,
        step,
        optimizer,
        transform,
        validate,
        **settings_of(hp),
        keep=network,
        train_mode=train_mode,
        epoch_columns=(
            (lambda: {"margin_fraction": margin_loss.margin_fraction}) if margin_loss is not None else None
        ),  # of the epoch's last step
        # BatchNorm1d in the head needs >= 2 samples per micro-batch: a short last batch is dropped, unless
        # it is all there is
        min_micro_batch=2,
        drop_last=True,
        clip=None if hp.clip_grad_norm is None else (network, hp.clip_grad_norm),
        sync_bn=hp.sync_bn,
        divergence_hint=f"lower learning_rate (now {hp.learning_rate}) or set clip_grad_norm",
    )
    return train(task, model_dir, fingerprint, options)


def describe(history: History) -> str:
    best = history.epochs[history.best_epoch - 1] if history.best_epoch else {}
    parts = [f"best epoch {history.best_epoch}"]
    if best.get("val_accuracy") is not None:
        parts.append(f"val verification accuracy {best['val_accuracy']:.4f}")
    return ", ".join(parts)
