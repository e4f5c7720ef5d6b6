"""Parameter counts at 1000 classes must equal the reference implementations exactly
(../shared/reference/architectures.md section 2: timm 1.0.31 / torchvision 0.29.1)."""

import pytest
import torch

import effnet

REFERENCE_PARAMS = {
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "efficientnet_lite0": 4_652_008,
    "efficientnet_lite1": 5_416_680,
    "efficientnet_lite2": 6_092_072,
    "efficientnet_lite3": 8_197_096,
    "efficientnet_lite4": 13_006_568,
    "efficientnet_v2_b0": 7_139_704,
    "efficientnet_v2_b1": 8_141_052,
    "efficientnet_v2_b2": 10_096_086,
    "efficientnet_v2_b3": 14_358_406,
    "efficientnet_v2_s": 21_458_488,
    "efficientnet_v2_m": 54_139_356,
    "efficientnet_v2_l": 118_515_272,
    "mobilenet_v1_100": 4_231_976,
    "mobilenet_v1_075": 2_585_560,
    "mobilenet_v1_050": 1_331_592,
    "mobilenet_v1_025": 470_072,
    "mobilenet_v2_050": 1_968_680,
    "mobilenet_v2_075": 2_636_424,
    "mobilenet_v2_100": 3_504_872,
    "mobilenet_v2_140": 6_108_776,
    "mobilenet_v3_large_075": 3_993_528,
    "mobilenet_v3_large_100": 5_483_032,
    "mobilenet_v3_small_075": 2_041_872,
    "mobilenet_v3_small_100": 2_542_856,
    "mobilenet_v3_large_minimal_100": 3_924_288,
    "mobilenet_v3_small_minimal_100": 2_044_736,
}
# num_classes=0: the pooled backbone
REFERENCE_BACKBONE_PARAMS = {
    "efficientnet_b0": 4_007_548,
    "efficientnet_lite0": 3_371_008,
    "efficientnet_v2_b0": 5_858_704,
    "mobilenet_v2_100": 2_223_872,
    "mobilenet_v3_large_100": 4_202_032,  # keeps the 960 -> 1280 pooled head conv
}


def build_on_meta(name, **kwargs):
    with torch.device("meta"):
        return effnet.create_model(name, **kwargs)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_param_count_matches_reference(name):
    assert effnet.count_params(build_on_meta(name)) == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("name", sorted(REFERENCE_BACKBONE_PARAMS))
def test_backbone_param_count_matches_reference(name):
    model = build_on_meta(name, num_classes=0)
    assert effnet.count_params(model) == REFERENCE_BACKBONE_PARAMS[name]
    assert model.num_features == 1280


def test_every_registered_model_has_a_reference_or_is_b8_l2():
    others = set(effnet.list_models()) - set(effnet.list_models(family="iresnet"))  # IResNet: own test
    assert others - set(REFERENCE_PARAMS) == {"efficientnet_b8", "efficientnet_l2"}


@pytest.mark.parametrize("num_classes", [10, 37])
def test_classifier_cost_is_features_times_classes(num_classes):
    full = effnet.count_params(build_on_meta("efficientnet_lite0", num_classes=num_classes))
    assert full == REFERENCE_BACKBONE_PARAMS["efficientnet_lite0"] + 1280 * num_classes + num_classes
