"""Fine-tuning the whole network, on one process or many (torchrun + DistributedDataParallel).

`fine_tune` trains with augmentation, a warm-up + cosine schedule and label smoothing; ``--batch-size`` is
the *global* batch, shared by ``world_size`` processes and ``accumulate`` micro-steps each. Every source of
randomness is derived, never carried: data order from (seed, epoch), augmentation from (seed, epoch, sample
index), dropout from (seed, step, rank, micro step). With step checkpoints that hold model, optimizer,
scheduler, grad scaler, epoch/step, history and RNG states, a run killed anywhere and resumed ends with the
weights of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from effnet import distributed
from effnet.data import EvalTransform, TrainTransform
from effnet.data.loading import FolderBatches
from effnet.image_classifier.hparams import HParams
from effnet.image_classifier.training import History, epoch_seed, make_optimizer, warmup_cosine
from effnet.runtime.cpu import cpu_info
from effnet.train_state import StepCheckpoints, rng_states, set_rng_states

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class RunOptions:
    """How a fine-tuning run executes (not what it learns: these are not part of the run's fingerprint).

    ``precision``: "fp32", "bf16" (autocast; CUDA, or a CPU with bf16 instructions: AVX512-BF16 / AMX, or
    Arm's BF16) or "fp16" (autocast + gradient scaling; CUDA only).
    ``accumulate``: micro-steps per optimizer step. ``checkpoint_every``: also checkpoint every N optimizer
    steps (0: at the end of each epoch only). ``keep_checkpoints``: how many step checkpoints stay on disk.
    ``device``: "cpu", "cuda" or None (CUDA when available).
    """

    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False
    sync_bn: bool = False
    accumulate: int = 1
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    device: str | None = None

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.accumulate < 1:
            raise ValueError(f"--accumulate must be >= 1, got {self.accumulate}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0 (0: every epoch), got {self.checkpoint_every}")


# bf16 on a CPU without bf16 instructions: PyTorch emulates it, and an epoch ran 13.6x as long as fp32
CPU_BF16_VARIABLE = "EFFNET_CPU_BF16"


class Precision:
    """Autocast and (for fp16) a gradient scaler for ``precision`` on ``device``. Refuses fp16 on a CPU,
    and bf16 on a CPU without bf16 instructions (`effnet.runtime.cpu.CpuInfo.bf16`) unless
    ``EFFNET_CPU_BF16=1``."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision == "fp16" and device.type != "cuda":
            raise ValueError(
                "--precision fp16 needs a CUDA device (CPU kernels lack fp16 and gradient scaling); "
                "use --precision fp32 on CPU"
            )
        if precision == "bf16" and device.type == "cpu":
            _check_cpu_bf16()
        self.device, self.precision = device, precision
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def _check_cpu_bf16() -> None:
    cpu = cpu_info()
    if cpu.bf16 or os.environ.get(CPU_BF16_VARIABLE, "") not in ("", "0"):
        return
    if cpu.bf16 is None:
        log.warning(
            "--precision bf16: cannot tell whether this CPU has bf16 instructions; without them "
            "bf16 runs emulated, ~14x slower than fp32"
        )
        return
    raise ValueError(
        f"--precision bf16 runs emulated on this CPU ({cpu.label}), ~14x slower than fp32: it has no "
        f"AVX512-BF16 / AMX (or Arm BF16) instructions; use --precision fp32 (or set {CPU_BF16_VARIABLE}=1 "
        "to run bf16 anyway)"
    )


def step_seed(seed: int, step: int, rank: int, micro: int) -> int:
    return (epoch_seed(seed, step) * 8191 + rank * 127 + micro) % 2**31


def resume_training(
    checkpoints: StepCheckpoints,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    precision: Precision,
    is_main: bool,
) -> tuple[bool, History, int, int, list[float]]:
    """Load the newest step checkpoint (if any) into the training objects and the RNGs; returns (resumed,
    history, epoch, step within it, the epoch's running sums: rank 0 keeps them, other ranks restart at
    zero as they contribute through an all-reduce)."""
    state = checkpoints.load_latest()
    if state is None:
        return False, History(), 1, 0, [0.0, 0.0, 0.0]
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    precision.scaler.load_state_dict(state["scaler"])
    set_rng_states(state["rng"])
    sums = list(state["sums"]) if is_main else [0.0, 0.0, 0.0]
    return True, History.from_dict(state["history"]), state["epoch"], state["step"], sums


def training_state(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    precision: Precision,
    history: History,
    next_epoch: int,
    next_step: int,
) -> dict:
    """What a step checkpoint holds besides the epoch's running sums; `resume_training` reads it back."""
    return {
        "model": plain_state(module),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": precision.scaler.state_dict(),
        "rng": rng_states(),
        "history": history.to_dict(),
        "epoch": next_epoch,
        "step": next_step,
    }


def optimizer_step(
    precision: Precision,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    clip: tuple[Any, float] | None = None,
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


def checkpoint_or_stop(stop: dict, options: RunOptions, global_step: int, last_of_epoch: bool) -> bool:
    """After optimizer step ``global_step`` (0-based): whether to write a step checkpoint, because some rank
    was asked to stop (``stop["stop"]`` is then set on every rank) or ``options.checkpoint_every`` steps
    passed (the end of an epoch has its own checkpoint)."""
    stop["stop"] = distributed.all_reduce_sum([stop["stop"]])[0] > 0  # every rank calls this collective
    every = options.checkpoint_every
    return stop["stop"] or bool(every and (global_step + 1) % every == 0 and not last_of_epoch)


@contextlib.contextmanager
def stop_requests():
    """SIGTERM (a scheduler, `kill`) sets a flag the loop reads after each optimizer step, so the run stops
    with a checkpoint of a complete step, never in the middle of one."""
    flag = {"stop": False}

    def handler(signum, frame):
        flag["stop"] = True

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)


def _freeze_bn(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def decoding_workers(num_workers: int | None) -> int:
    """Decoding processes per rank: ``num_workers``, or (None) the available CPUs shared by this node's
    ranks; a single one decodes in the training process."""
    if num_workers is not None:
        return num_workers
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return share if share > 1 else 0


def _batches(data, hp: HParams, context: distributed.DistContext, accumulate: int):
    if hasattr(data, "batches"):  # a ShardDataset: streams its own batches
        data.num_workers = decoding_workers(hp.num_workers)
        return data.batches(hp.batch_size, context.rank, context.world_size, accumulate, hp.seed)
    sampler = distributed.GlobalBatchSampler(
        len(data), hp.batch_size, context.rank, context.world_size, accumulate, hp.shuffle, hp.seed
    )
    return FolderBatches(data, sampler, num_workers=decoding_workers(hp.num_workers), seed=hp.seed)


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
    train,
    val,
    hp: HParams,
    model_dir: Path | None,
    fingerprint: dict,
    options: RunOptions | None = None,
) -> History:
    """Train the whole network; returns the history, with ``model`` holding the best epoch's weights.

    ``train`` / ``val``: `ImageDataset` or `effnet.data.shards.ShardDataset`. Under torchrun every rank calls
    this with the same arguments; only rank 0 shows progress and writes checkpoints.
    """
    options = options or RunOptions()
    options.validate()
    context = distributed.init(options.device)
    precision = Precision(options.precision, context.device)
    batches = _batches(train, hp, context, options.accumulate)
    steps = batches.steps_per_epoch
    if steps < 1:
        raise ValueError(f"{len(train)} training images do not fill one batch of {hp.batch_size}")
    pretrained = getattr(model, "weights_report", None) is not None
    lr = distributed.scaled_learning_rate(hp.learning_rate, hp.batch_size, hp.lr_base_batch)
    optimizer = make_optimizer(
        model, replace(hp, learning_rate=lr), hp.backbone_lr_scale if pretrained else 1.0
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(hp.warmup_steps, steps * hp.epochs)
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=hp.label_smoothing, reduction="sum")
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    model.to(device=context.device, memory_format=memory_format)

    checkpoints = StepCheckpoints(model_dir, fingerprint, options.keep_checkpoints)
    resumed, history, epoch, start_step, sums = resume_training(
        checkpoints, model, optimizer, scheduler, precision, context.is_main
    )
    if resumed and context.is_main:
        print(f"resuming at epoch {epoch}, step {start_step}/{steps}")
    network = distributed.wrap_model(model, context, options.sync_bn)
    runner = torch.compile(network) if options.compile else network
    module = distributed.unwrap(network)  # SyncBatchNorm conversion may have made a new module

    def save(next_epoch: int, next_step: int, epoch_sums: list[float]) -> None:
        reduced = distributed.all_reduce_sum(epoch_sums)  # every rank calls this: it is a collective
        if context.is_main:
            state = training_state(module, optimizer, scheduler, precision, history, next_epoch, next_step)
            checkpoints.save((next_epoch - 1) * steps + next_step, {**state, "sums": reduced})

    eval_transform = EvalTransform(module.preprocessing)
    with stop_requests() as stop:
        while epoch <= hp.epochs:
            began = time.perf_counter()
            transform = (
                TrainTransform(
                    module.preprocessing,
                    seed=0,  # replaced per sample, from (seed, epoch, index)
                    scale=hp.crop_scale,
                    flip=hp.flip,
                    brightness=hp.color_jitter,
                    contrast=hp.color_jitter,
                    saturation=hp.color_jitter,
                )
                if hp.use_augmentation
                else eval_transform
            )
            runner.train()
            if hp.bn_frozen(pretrained):
                _freeze_bn(runner)
            bar = tqdm(
                total=steps, initial=start_step, desc=f"epoch {epoch}/{hp.epochs}", unit="step",
                dynamic_ncols=True, disable=not context.is_main,
            )  # fmt: skip
            for step, micro, images, labels, count in batches.epoch(epoch, transform, start_step):
                torch.manual_seed(step_seed(hp.seed, (epoch - 1) * steps + step, context.rank, micro))
                x = images.to(context.device, non_blocking=True).contiguous(memory_format=memory_format)
                y = labels.to(context.device, non_blocking=True)
                last_micro = micro == options.accumulate - 1
                sync = (
                    network.no_sync() if context.distributed and not last_micro else contextlib.nullcontext()
                )
                with sync:
                    with precision.autocast():
                        logits = runner(x)
                        # sum / global count, x world size (DDP averages over ranks): the gradient of the
                        # global batch's mean loss, however it is split across ranks and micro-steps
                        loss = loss_fn(logits.float(), y) * (context.world_size / count)
                    precision.scaler.scale(loss).backward()
                sums[0] += loss.item() * count / context.world_size
                sums[1] += (logits.argmax(1) == y).sum().item()
                sums[2] += len(y)
                if not last_micro:
                    continue
                optimizer_step(precision, optimizer, scheduler)
                bar.update(1)
                if context.is_main:
                    bar.set_postfix(loss=f"{sums[0] / max(sums[2], 1):.3f}")
                if checkpoint_or_stop(stop, options, (epoch - 1) * steps + step, step + 1 == steps):
                    save(epoch, step + 1, sums)
                if stop["stop"]:
                    bar.close()
                    raise KeyboardInterrupt
            bar.close()
            loss_sum, correct, seen = distributed.all_reduce_sum(sums)
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(seen, 1),
                "train_accuracy": correct / max(seen, 1),
            }
            val_loss = val_accuracy = None
            if val is not None:
                val_loss, val_accuracy = evaluate_sharded(runner, val, hp, context, precision)
            row.update(
                val_loss=val_loss, val_accuracy=val_accuracy, lr=max(g["lr"] for g in optimizer.param_groups)
            )
            row["seconds"] = time.perf_counter() - began
            history.record(row, lambda: plain_state(module))
            stalled = epoch - history.best_epoch  # derived from the history, so it survives a resume
            if context.is_main:
                log.info(
                    "epoch %d: %s", epoch, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
                )
            epoch, start_step, sums = epoch + 1, 0, [0.0, 0.0, 0.0]
            save(epoch, 0, sums)
            patience = hp.early_stopping_patience
            if distributed.agree(bool(patience) and val is not None and stalled >= patience):
                if context.is_main:
                    print(f"early stopping: no better validation accuracy in {patience} epochs")
                break
    module.load_state_dict(history.best_state)
    module.eval()
    if module is not model:  # SyncBatchNorm conversion built new layers: copy back into the caller's model
        model.load_state_dict(plain_state(module))
    model.to("cpu").eval()
    return history


def plain_state(module: nn.Module) -> dict:
    """A CPU copy of ``module``'s state dict (for checkpoints and the best epoch's weights)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
