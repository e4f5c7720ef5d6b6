"""One line describing the machine a benchmark ran on (printed with every table), and the way a benchmark
writes its table."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

from effnet.runtime.cpu import cpu_info


def describe() -> str:
    """``AMD EPYC [avx2 avx512 avx512_vnni], 2 cores, torch 2.13.0+cpu, 2 threads, Python 3.11.7``."""
    return (
        f"{cpu_info().label}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
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
