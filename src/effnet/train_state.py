"""Step-level training checkpoints: written atomically every N optimizer steps (and when a run is stopped),
the last few kept, the newest complete one read to resume mid-epoch.

A checkpoint is one dict (model, optimizer, scheduler, grad scaler, epoch, step, history, RNG states, and
whatever else the trainer adds) under ``run_dir/checkpoints/step-00001234.pt``. Exact resume needs more
than these states: a trainer must draw its randomness (data order, augmentation, dropout) from seeds derived
from (seed, epoch, sample or step), as `effnet.image_classifier.fine_tuning` does; the saved RNG states are
restored too, for code that draws from the global generators anyway.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effnet.checkpoint import load_torch, save_torch

log = logging.getLogger(__name__)
FOLDER = "checkpoints"
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


class StepCheckpoints:
    """The step checkpoints of one run in ``run_dir/checkpoints``.

    ``fingerprint`` identifies the run (model, data, settings): a checkpoint of another run is refused rather
    than silently continued. ``keep``: how many of the newest checkpoints stay on disk.
    """

    def __init__(self, run_dir: str | Path | None, fingerprint: dict, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"--keep-checkpoints must be >= 1, got {keep}")
        self.folder = Path(run_dir) / FOLDER if run_dir is not None else None
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
            return None
        state = load_torch(
            paths[-1], "delete it to resume from the one before, or the whole folder to start over"
        )
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"{paths[-1]} belongs to another run (different model, data or settings); use a new output "
                f"folder, or delete {self.folder} to start over"
            )
        log.info("resuming from %s", paths[-1])
        return state
