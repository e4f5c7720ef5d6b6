"""Segmenter architectures: the reference parameter count, dilation, heads over any backbone by name."""

import copy

import pytest
import torch

from effnet.models import build_model
from effnet.models.dilation import dilate
from effnet.models.segmentation import build_segmenter, get_segmenter_spec, list_segmenters


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_lraspp_mobilenet_v3_large_has_torchvisions_parameter_count():
    # torchvision model docs (LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1): 3,221,538 params
    # at 21 classes; its layout: MobileNetV3-Large dilated at stride 16, 40- and 960-channel taps, 128 inner
    assert count(build_segmenter("lraspp_mobilenet_v3_large", 21)) == 3_221_538


def test_mobile_deeplabv3_matches_the_mobilenet_v2_paper():
    # MobileNetV2 paper Table 7: MNet V2*, output stride 16, no ASPP atrous branches: 2.11M params (VOC, 21)
    assert round(count(build_segmenter("deeplabv3_mobilenet_v2", 21)) / 1e6, 2) == 2.11


def test_dilation_is_the_a_trous_algorithm():
    """A backbone without squeeze-excite, dilated to output stride 16, computes the undilated network's
    stride-32 map at every other position of its stride-16 map (exactly, not approximately)."""
    torch.manual_seed(0)
    plain = build_model("mobilenet_v2_100", features_only=True).eval().double()
    dilated = dilate(copy.deepcopy(plain), 16)
    assert dilated.feature_info.reductions() == [2, 4, 8, 16, 16]
    x = torch.randn(1, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        expected, got = plain(x)[-1], dilated(x)[-1]
    assert got.shape[-2:] == (4, 6) and expected.shape[-2:] == (2, 3)
    scale = expected.abs().max()  # a random network's maps are small: compare relative to their size
    torch.testing.assert_close(got[..., ::2, ::2] / scale, expected / scale, rtol=0, atol=1e-6)
    assert (got[..., 1::2, ::2] / scale - expected / scale).abs().max() > 1e-3  # the other positions differ
    assert count(dilated) == count(plain)
    with pytest.raises(ValueError, match="output_stride must be one of"):
        dilate(plain, 4)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_output_stride_sets_the_last_map(output_stride):
    model = build_segmenter("lraspp_efficientnet_lite0", 3, input_size=64, output_stride=output_stride).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        low, high = model.backbone_features(x)
        logits = model(x)
    assert low.shape[-1] == 64 // 8 and high.shape[-1] == 64 // output_stride
    assert logits.shape == (2, 3, 64, 64)


def test_every_segmenter_builds_and_names_are_checked():
    assert {"lraspp_mobilenet_v3_large", "lraspp_efficientnet_lite0", "deeplabv3_mobilenet_v2"} <= set(
        list_segmenters()
    )
    assert list_segmenters("deeplab*") == [n for n in list_segmenters() if n.startswith("deeplabv3")]
    for name in list_segmenters("lite0"):
        model = build_segmenter(name, 4, input_size=64).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4, 64, 64)
    with pytest.raises(ValueError, match="did you mean lraspp_mobilenet_v3_large"):
        get_segmenter_spec("lraspp_mobilenet_v3_larg")
