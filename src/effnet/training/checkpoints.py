"""Training checkpoints, one format for every trainer: written atomically every N optimizer steps, at each
epoch's end and when a run is stopped; the last few kept; the newest complete one read to resume, mid-epoch
too.

A checkpoint is one dict (model, optimizer, scheduler, grad scaler, the next epoch and step, history, RNG
states, the epoch's running sums, and whatever else the trainer adds) under
``run_dir/checkpoints/step-00001234.pt``, read with ``torch.load(weights_only=True)``: loading one never runs
code. Exact resume needs more than these states: a trainer must draw its randomness (data order,
augmentation, dropout) from seeds derived from (seed, epoch, sample or step), as `effnet.training.loop`
does; the saved RNG states are restored too, for code that draws from the global generators anyway.

Runs of effnet before this format wrote the frozen-backbone head's checkpoint to ``run_dir/checkpoint.pt``
(`LEGACY_FILE`); ``StepCheckpoints(..., legacy=True)`` still resumes from one.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.checkpoint import load_torch, save_torch

log = logging.getLogger(__name__)
FOLDER = "checkpoints"
LEGACY_FILE = "checkpoint.pt"
_NAME = re.compile(r"^step-(\d{8,})\.pt$")


def rng_states() -> dict[str, Any]:
    """The global generators of torch (CPU and CUDA), numpy and Python's random, in the types a checkpoint
    read with ``torch.load(weights_only=True)`` may hold (tensors, numbers, strings, lists, tuples, dicts)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": numpy_state,
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = {**numpy_state, "state": dict(numpy_state["state"])}
        numpy_state["state"]["key"] = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy_state)
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def plain_state(module: nn.Module) -> dict:
    """A CPU copy of ``module``'s state dict (for checkpoints and the best epoch's weights)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


class StepCheckpoints:
    """The checkpoints of one run in ``run_dir/checkpoints``.

    ``fingerprint`` identifies the run (model, data, settings): a checkpoint of another run is refused rather
    than silently continued. ``keep``: how many of the newest checkpoints stay on disk. ``legacy``: without
    step checkpoints, resume from an older effnet's ``run_dir/checkpoint.pt`` (a frozen-backbone head's).
    """

    def __init__(
        self, run_dir: str | Path | None, fingerprint: dict, keep: int = 2, legacy: bool = False
    ) -> None:
        if keep < 1:
            raise ValueError(f"--keep-checkpoints must be >= 1, got {keep}")
        self.folder = Path(run_dir) / FOLDER if run_dir is not None else None
        self.legacy_path = Path(run_dir) / LEGACY_FILE if run_dir is not None and legacy else None
        self.fingerprint = fingerprint
        self.keep = keep

    def paths(self) -> list[Path]:
        """Complete checkpoints, oldest first (temporary files of an interrupted write are not listed)."""
        if self.folder is None or not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return [path for _, path in sorted(found)]

    def exists(self) -> bool:
        return bool(self.paths())

    def save(self, step: int, state: dict) -> Path | None:
        """Write ``state`` as the checkpoint of global step ``step`` (atomically), then drop old ones."""
        if self.folder is None:
            return None
        path = self.folder / f"step-{step:08d}.pt"
        save_torch({**state, "fingerprint": self.fingerprint, "global_step": step}, path)
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self) -> dict | None:
        """The newest checkpoint's dict, or None when there is none; refuses another run's checkpoint."""
        paths = self.paths()
        if not paths:
            return self._load_legacy()
        state = self._read(
            paths[-1],
            "delete it to resume from the one before, or the whole folder to start over",
            f"delete {self.folder} to start over",
        )
        log.info("resuming from %s", paths[-1])
        return state

    def _read(self, path: Path, fix_damaged: str, fix_other_run: str) -> dict:
        state = load_torch(path, fix_damaged)
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"{path} belongs to another run (different model, data or settings); use a new output "
                f"folder, or {fix_other_run}"
            )
        return state

    def _load_legacy(self) -> dict | None:
        """An older effnet's per-epoch ``checkpoint.pt``, in this format's keys (the next epoch, step 0)."""
        if self.legacy_path is None or not self.legacy_path.is_file():
            return None
        fix = "delete it (effnet train: --overwrite) to start the run over"
        state = self._read(self.legacy_path, fix, "delete the checkpoint to start over")
        log.info("resuming after epoch %d (%s)", state["epoch"], self.legacy_path)
        return {**state, "model": state["module"], "epoch": state["epoch"] + 1, "step": 0}


def training_state(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    history: Any,
    next_epoch: int,
    next_step: int,
) -> dict:
    """What a checkpoint holds besides the epoch's running sums; `resume_training` reads it back."""
    state = {
        "model": plain_state(module),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_states(),
        "history": history.to_dict(),
        "epoch": next_epoch,
        "step": next_step,
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return state


def resume_training(
    checkpoints: StepCheckpoints,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None = None,
) -> dict | None:
    """Load the newest checkpoint (if any) into the training objects and the RNGs; returns it (its
    ``history``, ``epoch``, ``step`` and ``sums`` are the caller's to read), or None."""
    state = checkpoints.load_latest()
    if state is None:
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    if "rng" in state:
        set_rng_states(state["rng"])
    return state
