"""MACs counted from the module graph (convolutions and linear layers, the papers' convention)."""

import pytest
import torch

import effnet

# (model, reference MACs at the default resolution, relative tolerance)
PAPER_MACS = [
    ("efficientnet_b0", 390e6, 0.02),
    ("mobilenet_v2_100", 300e6, 0.02),
    ("mobilenet_v3_large_100", 217e6, 0.03),
    ("mobilenet_v1_100", 569e6, 0.02),
    ("efficientnet_v2_s", 8.4e9, 0.02),
    ("efficientnet_v2_b0", 0.72e9, 0.02),
]


@pytest.mark.parametrize(("name", "reference", "tolerance"), PAPER_MACS)
def test_macs_match_paper(name, reference, tolerance):
    macs = effnet.profile(effnet.create_model(name)).macs
    assert macs == pytest.approx(reference, rel=tolerance)


def test_lite0_macs_are_b0_without_squeeze_excite():
    """The TF Lite README's 407M for Lite0 also counts element-wise ops (BN, activations): under that
    convention Lite0 would exceed B0, yet Lite0 is B0 minus squeeze-excite. Counted like the papers,
    Lite0 is B0 less exactly its SE convolutions."""
    lite0 = effnet.profile(effnet.create_model("efficientnet_lite0"))
    b0 = effnet.profile(effnet.create_model("efficientnet_b0"))
    se_macs = sum(layer.macs for layer in b0.layers if ".se." in layer.name)
    assert se_macs > 0
    assert lite0.macs == b0.macs - se_macs
    assert lite0.macs == pytest.approx(407e6, rel=0.06)


def test_macs_scale_with_resolution_and_count_on_meta():
    model = effnet.create_model("mobilenet_v2_100")
    at_224 = effnet.profile(model, 224).macs
    at_448 = effnet.profile(model, 448).macs
    # every feature map doubles on each side (448 / 32 = 14): convs cost 4x, the classifier the same
    classifier = 1280 * 1000
    assert (at_448 - classifier) == 4 * (at_224 - classifier)
    with torch.device("meta"):
        meta_model = effnet.create_model("mobilenet_v2_100")
    assert effnet.profile(meta_model).macs == at_224


def test_profile_table_lists_layers_and_total():
    result = effnet.profile(effnet.create_model("mobilenet_v3_small_100"), 96)
    table = result.table()
    assert "classifier" in table and "total" in table
    assert sum(layer.params for layer in result.layers) == result.params
