"""`effnet.create_model` argument checks."""

import math

import pytest

import effnet


@pytest.mark.parametrize("size", [0, -1, 1.5, math.nan, (224, 0), True])
def test_create_model_refuses_a_nonsense_input_size(size):
    with pytest.raises(ValueError, match="input_size must be an int or"):
        effnet.create_model("efficientnet_lite0", input_size=size)


def test_create_model_takes_a_whole_number_input_size():
    assert effnet.create_model("mobilenet_v1_025", input_size=96.0).preprocessing.input_size == (96, 96)
