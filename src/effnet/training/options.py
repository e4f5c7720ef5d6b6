"""How a training run executes (`RunOptions`) and its numeric precision (`Precision`), for every task."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch

from effnet.runtime.cpu import cpu_info

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "bf16", "fp16")
# bf16 on a CPU without bf16 instructions: PyTorch emulates it, and an epoch ran 13.6x as long as fp32
CPU_BF16_VARIABLE = "EFFNET_CPU_BF16"
# for tests and scripts: stop a run after this many optimizer steps, as SIGTERM would (see `RunOptions`)
STOP_AFTER_STEP_VARIABLE = "EFFNET_STOP_AFTER_STEP"


@dataclass
class RunOptions:
    """How a training run executes (not what it learns: these are not part of the run's fingerprint).

    ``precision``: "fp32", "bf16" (autocast; CUDA, or a CPU with bf16 instructions: AVX512-BF16 / AMX, or
    Arm's BF16) or "fp16" (autocast + gradient scaling; CUDA only).
    ``accumulate``: micro-steps per optimizer step. ``checkpoint_every``: also checkpoint every N optimizer
    steps (0: at the end of each epoch only). ``keep_checkpoints``: how many step checkpoints stay on disk.
    ``device``: "cpu", "cuda" or None (CUDA when available).
    ``stop_after_step``: stop once the run's N-th optimizer step is done, exactly as SIGTERM would (a step
    checkpoint, then KeyboardInterrupt), so tests can stop a run mid-epoch deterministically; the
    environment variable ``EFFNET_STOP_AFTER_STEP=N`` does the same for a run started as a command.
    """

    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False
    sync_bn: bool = False
    accumulate: int = 1
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    device: str | None = None
    stop_after_step: int | None = None

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.accumulate < 1:
            raise ValueError(f"--accumulate must be >= 1, got {self.accumulate}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0 (0: every epoch), got {self.checkpoint_every}")
        if self.stop_after_step is not None and self.stop_after_step < 1:
            raise ValueError(f"stop_after_step must be >= 1, got {self.stop_after_step}")

    def stop_step(self) -> int | None:
        """`stop_after_step`, else ``EFFNET_STOP_AFTER_STEP`` from the environment, else None."""
        if self.stop_after_step is not None:
            return self.stop_after_step
        value = os.environ.get(STOP_AFTER_STEP_VARIABLE, "")
        if not value:
            return None
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{STOP_AFTER_STEP_VARIABLE}={value!r} must be a whole number >= 1")
        return int(value)


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
