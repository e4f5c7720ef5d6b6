"""Numbers from users: finite, of the right kind, in range; the error names the argument and the value."""

import math

import numpy as np
import pytest

from effnet.validation import check_integer, check_number


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_integers_in_range_pass(value):
    check_integer("epochs", value, 1)


@pytest.mark.parametrize("value", [0, -5, 1.5, 2.0, True, "3", None])
def test_other_values_are_not_integers_in_range(value):
    with pytest.raises(ValueError, match=r"^epochs must be an integer >= 1, got "):
        check_integer("epochs", value, 1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1e-3, True, "0.1"])
def test_non_finite_or_out_of_range_numbers_are_refused(value):
    with pytest.raises(ValueError, match=r"^learning_rate must be a finite number > 0, got "):
        check_number("learning_rate", value, above=0)


def test_bounds_are_named_in_the_message():
    check_number("dropout_rate", 0.0, at_least=0, below=1)
    check_number("momentum", np.float32(0.9), at_least=0, at_most=1)
    with pytest.raises(ValueError, match=r"dropout_rate must be a finite number >= 0 and < 1, got 1"):
        check_number("dropout_rate", 1, at_least=0, below=1)
