"""The generated params / MACs table `effnet models` prints equals what building each model gives."""

import pytest

from effnet.models import list_models
from effnet.models.counts import COUNTS, measure


def test_every_registered_model_has_a_row():
    missing = sorted(set(list_models()) - set(COUNTS))
    extra = sorted(set(COUNTS) - set(list_models()))
    stale = f"missing {missing}, extra {extra}: run python -m effnet.models.counts"
    assert not missing and not extra, stale


@pytest.mark.parametrize(
    "name",
    ["efficientnet_lite0", "mobilenet_v1_025", "mobilenet_v3_small_100", "efficientnet_v2_b0", "iresnet18"],
)
def test_table_equals_the_built_model(name):
    assert COUNTS[name] == measure(name), "stale table: run python -m effnet.models.counts"


def test_every_detector_has_a_row():
    from effnet.models.counts import DETECTOR_COUNTS
    from effnet.models.detection import list_detectors

    assert sorted(DETECTOR_COUNTS) == sorted(list_detectors()), "stale: run python -m effnet.models.counts"


@pytest.mark.parametrize("name", ["efficientdet_lite0", "efficientdet_lite4", "ssdlite_mobilenet_v3_large"])
def test_detector_table_equals_the_built_detector(name):
    from effnet.models.counts import DETECTOR_COUNTS, measure_detector

    assert DETECTOR_COUNTS[name] == measure_detector(name), "stale table: run python -m effnet.models.counts"
