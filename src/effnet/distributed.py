"""Multi-process training on PyTorch's own engine (torch.distributed + DistributedDataParallel).

Generic plumbing that any trainer (the image classifier, an embedding trainer) can use: read the process
group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), gloo on CPU and nccl on
CUDA, rank-0 helpers, reductions for metrics and for decisions every rank must share (early stopping),
DDP wrapping with optional SyncBatchNorm, and `GlobalBatchSampler`, which splits each *global* batch of
one seeded permutation across ranks and accumulation steps, so a run on N processes sees the same samples
in the same steps as a single process with the same ``--batch-size``.

Without torchrun (WORLD_SIZE unset or 1) every helper is a cheap no-op: single-process code needs no branch.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name}={value!r} must be an integer (set by torchrun)"
        ) from None


def world_size() -> int:
    """How many processes torchrun launched (its WORLD_SIZE; 1 without torchrun), known before `init`."""
    return _env_int("WORLD_SIZE", 1)


def init(device: str | None = None, timeout_minutes: float = 30.0) -> DistContext:
    """Join the process group torchrun described in the environment; a no-op context without torchrun.

    ``device``: "cpu", "cuda" or None (CUDA when available). CUDA uses nccl with one GPU per local rank;
    CPU uses gloo. Calling it again returns the same context. Ranks other than 0 turn tqdm bars off.
    """
    size = world_size()
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        target = torch.device("cuda", torch.cuda.current_device())
    else:
        target = torch.device("cpu")
    if rank != 0:
        _silence_progress_bars()
    if size > 1 and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ValueError(f"WORLD_SIZE={size} but {name} is not set; launch with torchrun")
        backend = "nccl" if use_cuda else "gloo"
        kwargs = {"device_id": target} if use_cuda else {}
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes), **kwargs)
        log.info("rank %d/%d joined the process group (%s)", rank, size, backend)
    return DistContext(rank, size, local_rank, target)


def _silence_progress_bars() -> None:
    """Progress on rank 0 only: other ranks' tqdm bars default to disabled (TQDM_DISABLE is read when tqdm
    is imported, which has happened by now)."""
    import functools

    import tqdm

    if not getattr(tqdm.tqdm.__init__, "_effnet_silenced", False):
        silenced = functools.partialmethod(tqdm.tqdm.__init__, disable=True)
        silenced._effnet_silenced = True
        tqdm.tqdm.__init__ = silenced


def shutdown() -> None:
    """Leave the process group (at the end of a run, on every rank)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0, and in a single-process run: the process that logs, shows progress and writes."""
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _reduce_device() -> torch.device:
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum over all ranks (float64), e.g. (loss sum, correct, count) of each rank's shard."""
    if not dist.is_initialized():
        return [float(v) for v in values]
    tensor = torch.tensor(list(values), dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def agree(flag: bool) -> bool:
    """Rank 0's decision, on every rank: stopping early (or not) must be unanimous, or the ranks that go on
    wait forever in their next gradient all-reduce."""
    if not dist.is_initialized():
        return bool(flag)
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_reduce_device())
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def broadcast_object(obj):
    """Rank 0's ``obj`` (picklable) on every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_model(model: nn.Module, context: DistContext, sync_bn: bool = False) -> nn.Module:
    """Move ``model`` to the context's device; with several processes wrap it in DistributedDataParallel
    (which broadcasts rank 0's weights, so all ranks start equal). ``sync_bn`` converts BatchNorm layers to
    SyncBatchNorm first: batch statistics over the global batch instead of each rank's share."""
    model = model.to(context.device)
    if not context.distributed:
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    # buffers (BatchNorm statistics) are not re-broadcast from rank 0 on every forward: with frozen BN they
    # never change, and SyncBatchNorm keeps them equal
    try:
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)
    except TypeError:  # older torch
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP (and torch.compile) wrapper."""
    model = getattr(model, "_orig_mod", model)
    model = (
        getattr(model, "module", model) if isinstance(model, nn.parallel.DistributedDataParallel) else model
    )
    return getattr(model, "_orig_mod", model)


def scaled_learning_rate(learning_rate: float, global_batch: int, base_batch: int | None) -> float:
    """Linear scaling rule (Goyal et al. 2017): ``learning_rate`` is meant for ``base_batch`` samples; None
    keeps it as given (the learning rate is for the batch as passed, the single-process convention)."""
    return learning_rate if not base_batch else learning_rate * global_batch / base_batch


def micro_batch_size(global_batch: int, world_size: int, accumulate: int) -> int:
    """Samples per forward pass on one rank; the global batch must divide evenly."""
    parts = world_size * accumulate
    if global_batch % parts:
        raise ValueError(
            f"--batch-size {global_batch} (the global batch) must be divisible by processes x --accumulate "
            f"= {world_size} x {accumulate} = {parts}; "
            f"e.g. pass --batch-size {max(parts, global_batch // parts * parts)}"
        )
    return global_batch // parts


class GlobalBatchSampler:
    """Index micro-batches for one rank: like DistributedSampler + gradient accumulation, but defined by the
    global batch, so results do not depend on how many processes share it.

    Each epoch draws one permutation of ``size`` indices from (seed, epoch) (`set_epoch`); global batch ``s``
    is ``order[s*B:(s+1)*B]``; rank ``r`` takes every ``world_size``-th sample of it starting at ``r``, and
    cuts its share into ``accumulate`` consecutive micro-batches. A short last global batch is shared as
    evenly as possible; one too short to give every rank and micro-step a sample is dropped (nobody may sit
    out a gradient all-reduce). `set_start` skips the first global steps (mid-epoch resume), no decoding.
    Iterating yields ``(global_step_in_epoch, micro_index, indices, global_count)``.
    """

    def __init__(
        self,
        size: int,
        global_batch: int,
        rank: int = 0,
        world_size: int = 1,
        accumulate: int = 1,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        micro_batch_size(global_batch, world_size, accumulate)  # validates
        self.size, self.global_batch = size, global_batch
        self.rank, self.world_size, self.accumulate = rank, world_size, accumulate
        self.shuffle, self.seed = shuffle, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, step: int) -> None:
        self.start = step

    def __len__(self) -> int:
        """Global steps per epoch."""
        full, rest = divmod(self.size, self.global_batch)
        return full + (1 if rest >= self.world_size * self.accumulate else 0)

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.size)

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray, int]]:
        order = self.order()
        for step in range(self.start, len(self)):
            batch = order[step * self.global_batch : (step + 1) * self.global_batch]
            mine = batch[self.rank :: self.world_size]
            for micro, indices in enumerate(np.array_split(mine, self.accumulate)):
                yield step, micro, indices, len(batch)
