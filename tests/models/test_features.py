import pytest
import torch

import effnet

EXPECTED_CHANNELS = {
    "efficientnet_b0": [16, 24, 40, 112, 320],
    "efficientnet_lite0": [16, 24, 40, 112, 320],
    "efficientnet_v2_s": [24, 48, 64, 160, 256],
    "mobilenet_v1_100": [64, 128, 256, 512, 1024],
    "mobilenet_v2_100": [16, 24, 32, 96, 320],
    "mobilenet_v3_large_100": [16, 24, 40, 112, 960],
    "mobilenet_v3_small_100": [16, 16, 24, 48, 576],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CHANNELS))
def test_features_only_strides_and_channels(name):
    model = effnet.create_model(name, features_only=True).eval()
    assert model.feature_info.reductions() == [2, 4, 8, 16, 32]
    assert model.feature_info.channels() == EXPECTED_CHANNELS[name]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 128, 96))
    assert [m.shape[1] for m in maps] == EXPECTED_CHANNELS[name]
    assert [(m.shape[2], m.shape[3]) for m in maps] == [(128 // r, 96 // r) for r in (2, 4, 8, 16, 32)]


def test_features_only_has_no_head_and_shares_backbone_keys():
    features = effnet.create_model("efficientnet_lite0", features_only=True)
    full = effnet.create_model("efficientnet_lite0")
    assert set(features.state_dict()) < set(full.state_dict())
    assert not any(k.startswith(("head.", "classifier.")) for k in features.state_dict())
    missing, _ = features.load_state_dict(full.state_dict(), strict=False)
    assert missing == []
    with pytest.raises(ValueError, match="features_only"):
        features.reset_classifier(10)
