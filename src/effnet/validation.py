"""Checks of arguments a user passes (an integer count, a finite rate in its range, keyword names): an error
that names the argument, what was expected and what was given, raised before any work starts. No torch: the
CLI's argument types use it.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any


def check_integer(name: str, value: Any, minimum: int | None = None) -> None:
    """Raise ValueError unless ``value`` is an integer (not a bool, not a float) >= ``minimum``."""
    if not is_integer_in_range(value, minimum):
        raise ValueError(f"{name} must be {describe_integer(minimum)}, got {value!r}")


def check_number(name: str, value: Any, **bounds: float) -> None:
    """Raise ValueError unless ``value`` is a finite real number (not a bool) within ``bounds``: ``above``
    (>), ``at_least`` (>=), ``below`` (<), ``at_most`` (<=), each only when given."""
    if not is_number_in_range(value, **bounds):
        raise ValueError(f"{name} must be {describe_number(**bounds)}, got {value!r}")


def check_keywords(function: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise TypeError naming the first keyword argument in ``given`` that ``function`` does not take, and the
    closest one it does (``quantisation_config`` -> ``quantization_config``)."""
    valid = list(valid)
    unknown = [name for name in given if name not in valid]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(valid)}"
    raise TypeError(f"{function}() got an unknown keyword argument {unknown[0]!r}{hint}")


def is_integer_in_range(value: Any, minimum: int | None = None) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False
    return minimum is None or value >= minimum


def is_number_in_range(value: Any, **bounds: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return False
    return all(_HOLDS[kind](value, bound) for kind, bound in bounds.items())


def describe_integer(minimum: int | None = None) -> str:
    """'an integer >= 1'."""
    return "an integer" + (f" >= {minimum}" if minimum is not None else "")


def describe_number(**bounds: float) -> str:
    """'a finite number >= 0 and < 1'."""
    wanted = " and ".join(f"{_SIGNS[kind]} {bound:g}" for kind, bound in bounds.items())
    return "a finite number" + (f" {wanted}" if wanted else "")


_SIGNS = {"above": ">", "at_least": ">=", "below": "<", "at_most": "<="}
_HOLDS = {
    "above": lambda value, bound: value > bound,
    "at_least": lambda value, bound: value >= bound,
    "below": lambda value, bound: value < bound,
    "at_most": lambda value, bound: value <= bound,
}
