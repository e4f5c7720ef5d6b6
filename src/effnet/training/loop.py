"""The training loop every task runs, on one process or many (torchrun + DistributedDataParallel).

A task (the image classifier, the embedder, a detector ...) describes itself as a `TrainingTask`: its
model, training data and settings, and a few functions: batch -> loss (`TrainingTask.step`), the epoch's
training transform, the optimizer and schedule, validation. `train` does the rest, once for every task:
the global-batch sampler, precision (autocast, gradient scaling), gradient accumulation (micro-steps), the
DDP wrap, step checkpoints and exact resume, stop signals (SIGTERM, `RunOptions.stop_after_step`),
progress, the history with the best epoch, and the all-reduce of the epoch's metrics.

``--batch-size`` is the *global* batch, shared by ``world_size`` processes and ``accumulate`` micro-steps
each. Every source of randomness is derived, never carried: data order from (seed, epoch), augmentation
from (seed, epoch, sample index), dropout from (seed, step, rank, micro step). With checkpoints that hold
model, optimizer, scheduler, grad scaler, epoch/step, history and RNG states, a run stopped anywhere and
resumed ends with the weights of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from effnet import distributed
from effnet.data.loading import FolderBatches
from effnet.training.checkpoints import StepCheckpoints, plain_state, resume_training, training_state
from effnet.training.control import stop_requests
from effnet.training.history import History
from effnet.training.options import Precision, RunOptions
from effnet.training.schedule import step_seed

log = logging.getLogger(__name__)


class StepOutput(NamedTuple):
    """What a task's step returns for one micro-batch: the loss *summed* over its samples (the loop scales
    it to the global batch's mean), and per name in `TrainingTask.metrics` a count summed over its samples
    (e.g. correct predictions)."""

    loss: torch.Tensor
    counts: tuple[float, ...] = ()


@dataclass
class TrainingTask:
    """What a task brings to `train`.

    ``model``: what the optimizer, DDP and the checkpoints see. ``keep``: the module whose weights are the
    result, restored to the best epoch's at the end (default: ``model``). ``data``: an `ImageDataset` or a
    `effnet.data.shards.ShardDataset`.

    ``step(runner, images, targets, global_step) -> StepOutput``: forward one micro-batch (already on the
    device) through ``runner`` (``model``, wrapped by DDP / torch.compile) under autocast.
    ``optimizer(steps_per_epoch) -> (optimizer, scheduler)``. ``transform(epoch)``: the epoch's training
    transform (its rng is replaced per sample from (seed, epoch, index)). ``validate(runner, context,
    precision) -> dict``: the epoch's validation columns (``val_accuracy`` and ``val_loss`` choose the best
    epoch; None values without validation data); called on every rank. ``train_mode()``: after
    ``model.train()`` each epoch (e.g. to freeze BatchNorm statistics). ``epoch_columns()``: more columns
    for the epoch's history row.

    ``min_micro_batch``: samples every micro-batch needs (BatchNorm1d: 2); a global batch too small for
    that is skipped. ``drop_last``: skip a short last batch unless it is all there is. ``clip``: (module,
    max norm) to clip that module's gradient norm to. ``divergence_hint``: the fix a non-finite training loss
    names.
    """

    model: nn.Module
    data: Any
    step: Callable[[nn.Module, torch.Tensor, Any, int], StepOutput]
    optimizer: Callable[[int], tuple[torch.optim.Optimizer, Any]]
    transform: Callable[[int], Callable]
    validate: Callable[[nn.Module, distributed.DistContext, Precision], dict]
    epochs: int
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    num_workers: int | None = None
    keep: nn.Module | None = None
    metrics: tuple[str, ...] = ("accuracy",)
    train_mode: Callable[[], None] | None = None
    epoch_columns: Callable[[], dict] | None = None
    min_micro_batch: int = 1
    drop_last: bool = False
    clip: tuple[nn.Module, float] | None = None
    sync_bn: bool = False
    early_stopping_patience: int | None = None
    divergence_hint: str = "lower the learning rate"


SETTINGS = ("epochs", "batch_size", "seed", "shuffle", "num_workers")


def settings_of(hparams: Any) -> dict:
    """The `TrainingTask` fields a task's hyperparameters hold under the same names (`SETTINGS`)."""
    return {name: getattr(hparams, name) for name in SETTINGS}


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode: its statistics stay fixed while training."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()


def decoding_workers(num_workers: int | None) -> int:
    """Decoding processes per rank: ``num_workers``, or (None) the available CPUs shared by this node's
    ranks; a single one decodes in the training process."""
    if num_workers is not None:
        return num_workers
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return share if share > 1 else 0


def training_batches(task: TrainingTask, context: distributed.DistContext, accumulate: int):
    """This rank's micro-batches of ``task.data``: a ShardDataset streams its own, a folder dataset goes
    through `distributed.GlobalBatchSampler`."""
    workers = decoding_workers(task.num_workers)
    if hasattr(task.data, "batches"):  # a ShardDataset
        task.data.num_workers = workers
        return task.data.batches(task.batch_size, context.rank, context.world_size, accumulate, task.seed)
    sampler = distributed.GlobalBatchSampler(
        len(task.data), task.batch_size, context.rank, context.world_size, accumulate, task.shuffle, task.seed
    )
    return FolderBatches(task.data, sampler, num_workers=workers, seed=task.seed)


def optimizer_step(
    precision: Precision,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    clip: tuple[Iterable, float] | None,
) -> None:
    """One optimizer step through the gradient scaler, then the schedule; ``clip``: (parameters, max norm)
    to clip those parameters' gradients to first."""
    if clip is not None:
        parameters, max_norm = clip
        precision.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    precision.scaler.step(optimizer)
    precision.scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


def _to_device(targets: Any, device: torch.device) -> Any:
    if isinstance(targets, torch.Tensor):
        return targets.to(device, non_blocking=True)
    if isinstance(targets, dict):
        return {k: _to_device(v, device) for k, v in targets.items()}
    if isinstance(targets, (list, tuple)):
        return type(targets)(_to_device(v, device) for v in targets)
    return targets


def train(
    task: TrainingTask, model_dir: Path | None, fingerprint: dict, options: RunOptions | None = None
) -> History:
    """Train ``task``; returns the history, with ``task.keep`` (or ``task.model``) holding the best epoch's
    weights, on the CPU, in eval mode.

    Under torchrun every rank calls this with the same arguments; only rank 0 shows progress and writes
    checkpoints (to ``model_dir/checkpoints``: at every epoch's end, every ``options.checkpoint_every``
    steps, and when stopped). ``fingerprint`` identifies the run: a checkpoint of another run is refused.
    """
    options = options or RunOptions()
    options.validate()
    stop_after = options.stop_step()
    context = distributed.init(options.device)
    precision = Precision(options.precision, context.device)
    batches = training_batches(task, context, options.accumulate)
    steps = batches.steps_per_epoch
    if steps < 1:
        raise ValueError(f"{len(task.data)} training images do not fill one batch of {task.batch_size}")
    # a global batch too small for every micro-batch, or a short last one with drop_last, is skipped;
    # decided on the global count, so every rank and micro-step skips the same step
    smallest = task.min_micro_batch * context.world_size * options.accumulate
    full_only = task.drop_last and len(task.data) > task.batch_size
    optimizer, scheduler = task.optimizer(steps)
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    task.model.to(device=context.device, memory_format=memory_format)

    checkpoints = StepCheckpoints(model_dir, fingerprint, options.keep_checkpoints)
    sums_size = len(task.metrics) + 2  # loss, the metrics' counts, samples: this rank's share
    state = resume_training(checkpoints, task.model, optimizer, scheduler, precision.scaler)
    history, epoch, start_step, sums = History(), 1, 0, [0.0] * sums_size
    if state is not None:
        history, epoch, start_step = History.from_dict(state["history"]), state["epoch"], state["step"]
        # rank 0 keeps the running sums; other ranks restart at zero, as they contribute by all-reduce
        sums = list(state["sums"]) if context.is_main else sums
        if context.is_main and epoch <= task.epochs:
            print(f"resuming at epoch {epoch}, step {start_step}/{steps}")
    wrapped = distributed.wrap_model(task.model, context, task.sync_bn or options.sync_bn)  # rank 0's weights
    runner = torch.compile(wrapped) if options.compile else wrapped
    module = distributed.unwrap(wrapped)  # SyncBatchNorm conversion may have made a new module
    keep = task.keep if task.keep is not None else module

    def save(next_epoch: int, next_step: int, epoch_sums: list[float]) -> None:
        if checkpoints.folder is None:
            return
        reduced = distributed.all_reduce_sum(epoch_sums)  # every rank calls this: it is a collective
        if context.is_main:
            state = training_state(
                module, optimizer, scheduler, precision.scaler, history, next_epoch, next_step
            )
            checkpoints.save((next_epoch - 1) * steps + next_step, {**state, "sums": reduced})
        distributed.barrier()  # a rank that resumes later reads a complete checkpoint

    with stop_requests() as stop:
        while epoch <= task.epochs:
            began = time.perf_counter()
            transform = task.transform(epoch)
            runner.train()
            if task.train_mode is not None:
                task.train_mode()
            bar = tqdm(
                total=steps, initial=start_step, desc=f"epoch {epoch}/{task.epochs}", unit="step",
                dynamic_ncols=True, disable=not context.is_main,
            )  # fmt: skip
            for step, micro, images, targets, count in batches.epoch(epoch, transform, start_step):
                if (full_only and count < task.batch_size) or count < smallest:
                    continue
                global_step = (epoch - 1) * steps + step
                torch.manual_seed(step_seed(task.seed, global_step, context.rank, micro))
                x = images.to(context.device, non_blocking=True).contiguous(memory_format=memory_format)
                y = _to_device(targets, context.device)
                last_micro = micro == options.accumulate - 1
                no_sync = context.distributed and not last_micro
                with wrapped.no_sync() if no_sync else contextlib.nullcontext():
                    with precision.autocast():
                        out = task.step(runner, x, y, global_step)
                    # sum / global count, x world size (DDP averages over ranks): the gradient of the
                    # global batch's mean loss, however it is split across ranks and micro-steps
                    precision.scaler.scale(out.loss.float() * (context.world_size / count)).backward()
                sums[0] += out.loss.item()
                for index, value in enumerate(out.counts, start=1):
                    sums[index] += float(value)
                sums[-1] += len(x)
                if not last_micro:
                    continue
                clip = None if task.clip is None else (task.clip[0].parameters(), task.clip[1])
                optimizer_step(precision, optimizer, scheduler, clip)
                bar.update(1)
                if context.is_main:
                    shown = {"loss": sums[0]} | {n[:3]: sums[i] for i, n in enumerate(task.metrics, 1)}
                    bar.set_postfix({k: f"{v / max(sums[-1], 1):.3f}" for k, v in shown.items()})
                stop["stop"] = stop["stop"] or global_step + 1 == stop_after
                if checkpoint_or_stop(stop, options, global_step, step + 1 == steps):
                    save(epoch, step + 1, sums)
                if stop["stop"]:
                    bar.close()
                    raise KeyboardInterrupt
            bar.close()
            reduced = distributed.all_reduce_sum(sums)
            seen = max(reduced[-1], 1)
            if not math.isfinite(reduced[0]):
                raise FloatingPointError(
                    f"the training loss became {reduced[0]} in epoch {epoch}; {task.divergence_hint}"
                )
            row: dict = {"epoch": epoch, "train_loss": reduced[0] / seen}
            row.update({f"train_{name}": reduced[i] / seen for i, name in enumerate(task.metrics, 1)})
            row.update(task.validate(runner, context, precision))
            row["lr"] = max(g["lr"] for g in optimizer.param_groups)
            if task.epoch_columns is not None:
                row.update(task.epoch_columns())
            row["seconds"] = time.perf_counter() - began
            history.record(row, lambda: plain_state(keep))
            stalled = epoch - history.best_epoch  # derived from the history, so it survives a resume
            if context.is_main:
                log.info(
                    "epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
                )
            epoch, start_step, sums = epoch + 1, 0, [0.0] * sums_size
            save(epoch, 0, sums)
            patience = task.early_stopping_patience
            validated = row.get("val_accuracy") is not None
            if distributed.agree(bool(patience) and validated and stalled >= patience):
                if context.is_main:
                    print(f"early stopping: no better validation accuracy in {patience} epochs")
                break
    keep.load_state_dict(history.best_state)
    if task.keep is None and module is not task.model:  # SyncBatchNorm made new layers: copy them back
        task.model.load_state_dict(plain_state(module))
    keep.to("cpu").eval()
    task.model.to("cpu").eval()
    return history


def checkpoint_or_stop(stop: dict, options: RunOptions, global_step: int, last_of_epoch: bool) -> bool:
    """After optimizer step ``global_step`` (0-based): whether to write a step checkpoint, because some rank
    was asked to stop (``stop["stop"]`` is then set on every rank) or ``options.checkpoint_every`` steps
    passed (the end of an epoch has its own checkpoint)."""
    stop["stop"] = distributed.all_reduce_sum([stop["stop"]])[0] > 0  # every rank calls this collective
    every = options.checkpoint_every
    return stop["stop"] or bool(every and (global_step + 1) % every == 0 and not last_of_epoch)
