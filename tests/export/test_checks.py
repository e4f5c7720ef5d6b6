"""The low-cosine warning's diagnosis: head BatchNorm channels that amplify rounding errors."""

import pytest
import torch

import effnet
from effnet.export.checks import AMPLIFYING_GAIN, _amplification_note, amplifying_channels


def _embedder(head: str, head_bn_eps: float | None = 1e-5) -> torch.nn.Module:
    return effnet.create_embedder("efficientnet_lite0", head, 32, 64, head_bn_eps=head_bn_eps).eval()


@pytest.mark.parametrize("head, norm", [("gdc", "bn"), ("flatten", "bn2")])
def test_channels_whose_running_variance_decayed_are_counted_with_their_gain(head, norm):
    model = _embedder(head)
    assert amplifying_channels(model) == (0, 1280, pytest.approx(1.0, abs=1e-4))  # fresh statistics
    assert _amplification_note(model) == ""
    bn = getattr(model.head, norm)
    with torch.no_grad():
        bn.running_var[[3, 70, 500]] = 1e-10  # channels the training images never varied
        bn.running_var[9] = 1.0 / (AMPLIFYING_GAIN - 1) ** 2  # just below the threshold
        bn.weight[70] = 0.5
    count, channels, largest = amplifying_channels(model)
    assert (count, channels) == (3, 1280)
    assert largest == pytest.approx(1 / (1e-10 + bn.eps) ** 0.5, rel=1e-3)  # 1 / sqrt(eps): 316
    note = _amplification_note(model)
    assert "3 of the 1280 channels" in note and "up to 316" in note and "gap head" in note


def test_a_gap_head_has_no_such_batchnorm():
    assert amplifying_channels(_embedder("gap")) == (0, 0, 0.0)


@pytest.mark.parametrize("head, norm", [("gdc", "bn"), ("flatten", "bn2")])
def test_the_default_head_eps_caps_the_gain_of_a_dead_channel_below_the_threshold(head, norm):
    model = _embedder(head, head_bn_eps=None)
    with torch.no_grad():
        getattr(model.head, norm).running_var[:100] = 0.0
    count, _, largest = amplifying_channels(model)
    assert count == 0 and largest == pytest.approx(1 / 1e-3**0.5, rel=1e-4)  # 32, not 316
