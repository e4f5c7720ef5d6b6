"""argparse ``type=`` functions for numbers: a bad value is a one-line usage error
(``effnet train: error: argument --learning-rate: must be a finite number > 0, got 'nan'``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from effnet.validation import describe_integer, describe_number, is_integer_in_range, is_number_in_range


def integer(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if not is_integer_in_range(value, minimum):
            raise argparse.ArgumentTypeError(f"must be {describe_integer(minimum)}, got {text!r}")
        return value

    return parse


def number(**bounds: float) -> Callable[[str], float]:
    """An argparse type: a finite number within ``bounds`` (see `effnet.validation.check_number`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not is_number_in_range(value, **bounds):
            raise argparse.ArgumentTypeError(f"must be {describe_number(**bounds)}, got {text!r}")
        return value

    return parse


positive_int = integer(1)
non_negative_int = integer(0)
positive_float = number(above=0)
non_negative_float = number(at_least=0)
finite_float = number()
fraction = number(at_least=0, below=1)  # a share of the data, or a dropout / stochastic-depth rate
area_fraction = number(above=0, at_most=1)  # a crop's share of the image area: 1 is all of it
