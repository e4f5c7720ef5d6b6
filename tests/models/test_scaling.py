import pytest
import torch

import effnet
from effnet.models import round_channels, round_repeats


@pytest.mark.parametrize(
    ("channels", "width", "round_limit", "expected"),
    [
        (32, 1.0, 0.9, 32),
        (32, 1.2, 0.9, 40),  # 38.4 -> 40
        (40, 1.1, 0.9, 48),  # 44 -> 48 (int(44 + 4) // 8 * 8)
        (112, 1.1, 0.9, 120),  # 123.2 -> 120
        (16, 0.75, 0.9, 16),  # 12 -> 16
        (24, 0.5, 0.9, 16),  # 12 -> 16
        (1280, 1.4, 0.9, 1792),
        (48, 1.2, 0.0, 56),  # V2: 57.6 -> 56
        (32, 0.25, 0.9, 8),
    ],
)
def test_round_channels(channels, width, round_limit, expected):
    assert round_channels(channels, width, 8, round_limit) == expected


def test_round_limit_forbids_rounding_down_more_than_ten_percent():
    # 12 * 0.75 = 9 rounds to 8, which is 11% down: V1 bumps it to 16; V2 (limit 0) keeps 8
    assert round_channels(12, 0.75, 8, 0.9) == 16
    assert round_channels(12, 0.75, 8, 0.0) == 8


@pytest.mark.parametrize(
    ("repeats", "depth", "expected"), [(1, 1.1, 2), (2, 1.1, 3), (4, 3.1, 13), (3, 1.0, 3)]
)
def test_round_repeats(repeats, depth, expected):
    assert round_repeats(repeats, depth) == expected


def count(config):
    with torch.device("meta"):
        return effnet.count_params(effnet.create_model(config))


@pytest.mark.parametrize(
    ("target", "width", "depth", "resolution"),
    [
        ("efficientnet_b3", 1.2, 1.4, 300),
        ("efficientnet_b5", 1.6, 2.2, 456),
        ("efficientnet_lite4", 1.4, 1.8, 300),
    ],
)
def test_scaling_round_trips_to_released_members(target, width, depth, resolution):
    base = "efficientnet_lite0" if "lite" in target else "efficientnet_b0"
    scaled = effnet.scale(base, width=width, depth=depth, resolution=resolution)
    assert count(scaled) == count(target)
    assert scaled.resolution == resolution == effnet.get_config(target).resolution


def test_scaling_other_families():
    wider = effnet.scale("mobilenet_v2_100", width=1.4)
    assert count(wider) == count("mobilenet_v2_140")
    deeper = effnet.scale("mobilenet_v3_large_100", depth=2.0)
    assert count(deeper) > count("mobilenet_v3_large_100")
    assert effnet.create_model(deeper).eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_compound_scaling():
    phi1 = effnet.compound("efficientnet_b0", 1)
    assert phi1.arch.width == pytest.approx(1.1) and phi1.arch.depth == pytest.approx(1.2)
    assert phi1.resolution == 256  # 224 * 1.15 = 257.6, kept a multiple of 8
    macs = [
        effnet.profile(effnet.create_model(effnet.compound("efficientnet_b0", phi))).macs for phi in (0, 1)
    ]
    assert macs[1] / macs[0] == pytest.approx(2.0, rel=0.15)  # FLOPs grow by about 2**phi


def test_scale_rejects_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        effnet.scale("efficientnet_b0", width=0)
    with pytest.raises(ValueError, match="at least 32"):
        effnet.scale("efficientnet_b0", resolution=16)
