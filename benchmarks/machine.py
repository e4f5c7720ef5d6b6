"""One line describing the machine a benchmark ran on (printed with every table), and the way a benchmark
writes its table."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )


def save_table(path: str | os.PathLike | None, lines: list[str], footer: str) -> None:
    """Print ``footer`` (the table's lines were printed as they came) and, with a ``path``, write the table
    and footer there, headed by the command that produced them."""
    print(footer)
    if path:
        command = f"<!-- python {' '.join(sys.argv)} -->"
        Path(path).write_text(command + "\n" + "\n".join(lines) + "\n" + footer + "\n")


def log_seconds(what: str, began: float) -> None:
    """How long one cell of a table took, on stderr (stdout is the table)."""
    print(f"  ({what}: {time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
