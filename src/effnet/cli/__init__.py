"""The `effnet` command: a thin shell over the Python API (each command is one documented call)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from effnet import __version__
from effnet.cli import bench, data, demo, embed, export, models, predict, train
from effnet.quiet import VERBOSE_VARIABLE, strip_ansi


class UserError(Exception):
    """An error caused by the user's input: printed as one line, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="effnet", description="Efficient on-device image models: build, train, export, measure."
    )
    parser.add_argument("--version", action="version", version=f"effnet {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the engines' own output (progress bars, warnings, C++ logs), which effnet hides; "
        "the same as EFFNET_VERBOSE=1",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    models.add_parsers(sub)
    predict.add_parsers(sub)
    train.add_parsers(sub)
    data.add_parsers(sub)
    export.add_parsers(sub)
    demo.add_parsers(sub)
    bench.add_parsers(sub)
    embed.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the process's arguments); returns the exit status."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # output that fitted the buffer meets a closed pipe here
    except BrokenPipeError:
        # the reader went away (`effnet models --json | head`): end quietly, with the status of a command
        # that SIGPIPE ended (128 + 13); stdout goes to devnull so that the exit's own flush cannot fail again
        _stdout_to_devnull()
        return 141


def _stdout_to_devnull() -> None:
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured by a test): nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if args.verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
    try:
        return args.func(args)
    except BrokenPipeError:
        raise  # an OSError, but not the user's: `main` ends quietly
    # ImportError: a missing optional package; effnet's messages name the package and the pip command
    except (UserError, ValueError, FileNotFoundError, OSError, ImportError) as error:
        print(f"effnet {args.command}: error: {strip_ansi(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"effnet {args.command}: interrupted", file=sys.stderr)
        return 130
