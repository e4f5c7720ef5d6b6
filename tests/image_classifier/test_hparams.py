"""Nonsense settings are refused by `create` before any image is read, naming the argument."""

import math

import pytest

from effnet import image_classifier
from effnet.image_classifier import DataLoader, HParams

# files that do not exist: create() must fail on its arguments before it would read them
NO_IMAGES = DataLoader.from_samples(["missing/a.png", "missing/b.png"], [0, 1], ["a", "b"])


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("epochs", 1.5, "epochs must be an integer >= 1, got 1.5"),
        ("epochs", 0, "epochs must be an integer >= 1, got 0"),
        ("learning_rate", math.nan, "learning_rate must be a finite number > 0, got nan"),
        ("learning_rate", math.inf, "learning_rate must be a finite number > 0, got inf"),
        ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
        ("momentum", -0.1, "momentum must be a finite number >= 0 and <= 1, got -0.1"),
        ("dropout_rate", 1.0, "dropout_rate must be a finite number >= 0 and < 1, got 1.0"),
        ("weight_decay", math.nan, "weight_decay must be a finite number >= 0, got nan"),
        ("warmup_steps", -1, "warmup_steps must be an integer >= 0, got -1"),
        ("num_workers", 1.0, "num_workers must be an integer >= 0, got 1.0"),
    ],
)
def test_create_refuses_nonsense_numbers_before_reading_images(argument, value, message):
    with pytest.raises(ValueError) as info:
        image_classifier.create(NO_IMAGES, **{argument: value})
    assert str(info.value) == message


def test_crop_scale_must_be_an_ordered_pair_of_area_fractions():
    HParams(crop_scale=(0.25, 1.0)).validate()
    with pytest.raises(ValueError, match=r"crop_scale\[1\] must be a finite number >= 0.5 and <= 1"):
        HParams(crop_scale=(0.5, 0.25)).validate()
    with pytest.raises(ValueError, match="crop_scale must be"):
        HParams(crop_scale=(0.5,)).validate()
