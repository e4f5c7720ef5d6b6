"""`effnet data ...`: built-in datasets written as image folders."""

from __future__ import annotations

import argparse

from effnet.data.samples import write_digits_folder


def cmd_digits(args: argparse.Namespace) -> int:
    root = write_digits_folder(args.out, limit=args.limit)
    count = sum(1 for _ in root.glob("*/*.png"))
    print(f"{root}: {count} images of scikit-learn's handwritten digits in 10 class folders")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="built-in datasets as image folders")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATASET", required=True)
    digits = data_sub.add_parser("digits", help="scikit-learn's 1,797 real handwritten digits (10 classes)")
    digits.add_argument("out", help="folder to write (one sub-folder per digit)")
    digits.add_argument("--limit", type=int, help="only the first N images")
    digits.set_defaults(func=cmd_digits)
