"""`History`: per-epoch metrics and the best epoch's weights, the same for every task."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch metrics and the best epoch so far."""

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_state: dict | None = None

    def record(self, row: dict, state: Callable[[], dict]) -> bool:
        """Add an epoch; keep its weights if it is the best on validation (else the latest). True if best."""
        self.epochs.append(row)
        if self.best_epoch is None:
            is_best = True
        elif row.get("val_accuracy") is None:
            is_best = True  # without validation data the last epoch is kept
        else:
            best = self.epochs[self.best_epoch - 1]
            is_best = (row["val_accuracy"], -row["val_loss"]) > (best["val_accuracy"], -best["val_loss"])
        if is_best:
            self.best_epoch = row["epoch"]
            self.best_state = copy.deepcopy(state())
        return is_best

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "best_state": self.best_state}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(data["epochs"], data["best_epoch"], data["best_state"])
