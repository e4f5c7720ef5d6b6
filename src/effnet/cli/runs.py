"""What the training commands (`effnet train`, `effnet embed-train`) share: the run-folder and scale-out
flags, `RunOptions` from them, and a training run in its folder (lock, --resume / --overwrite, Ctrl-C)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from effnet.cli.argument_types import non_negative_int, positive_int

if TYPE_CHECKING:
    from effnet.distributed import DistContext
    from effnet.training import RunOptions

Trained = TypeVar("Trained")
INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C (SIGINT), used for SIGTERM too


def run_training(
    args: argparse.Namespace,
    context: DistContext,
    run_files: Sequence[str],
    train: Callable[[], Trained],
    report: Callable[[Trained], int],
) -> int:
    """``train()`` in the run folder ``args.out`` (one run at a time; --resume / --overwrite), then, on the
    main process only, ``report(trained)``. Ctrl-C or SIGTERM: says how to continue, returns 130."""
    from effnet import distributed
    from effnet.training.run_folder import run_in_folder

    out = Path(args.out)
    with run_in_folder(out, context, args.resume, args.overwrite, run_files):
        try:
            trained = train()
        except KeyboardInterrupt:
            if context.is_main:
                print(
                    f"\ninterrupted: the last checkpoint is saved in {out}; continue with --resume",
                    file=sys.stderr,
                )
            return INTERRUPTED
        distributed.shutdown()
        return report(trained) if context.is_main else 0


def run_options(args: argparse.Namespace) -> RunOptions:
    """`RunOptions` from the flags of `add_run_option_arguments`."""
    from effnet.training import RunOptions

    return RunOptions(
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        sync_bn=args.sync_bn,
        accumulate=args.accumulate,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        device=args.device,
    )


def add_run_folder_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")


def add_run_option_arguments(p: argparse.ArgumentParser, title: str):
    """The flags that make `RunOptions` (`run_options`), shared by the training commands; the group."""
    g = p.add_argument_group(title)
    g.add_argument(
        "--accumulate",
        type=positive_int,
        default=1,
        help="micro-steps per optimizer step (the batch stays global; default: %(default)s)",
    )
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm: statistics over the global batch")
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="autocast precision: bf16 on CUDA or a CPU with AVX512-BF16 / AMX (Arm: BF16), fp16 on CUDA "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="NHWC memory format (default: on)",
    )
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    g.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=0,
        metavar="STEPS",
        help="checkpoint every STEPS steps too (default: %(default)s: at the end of each epoch only)",
    )
    g.add_argument(
        "--keep-checkpoints",
        type=positive_int,
        default=2,
        help="step checkpoints kept (default: %(default)s)",
    )
    return g
