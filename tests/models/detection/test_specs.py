"""The detector tables build the published architectures: exact parameter and anchor counts, the BiFPN
graph of the paper, and the automl / torchvision settings each name stands for."""

import pytest
import torch

import effnet
from effnet.models.detection import build_detector, get_detector_spec, list_detectors
from effnet.models.detection.anchors import feature_sizes, num_anchors
from effnet.models.detection.efficientdet import bifpn_nodes
from effnet.profiling import count_params

# Parameters at COCO's 90 classes with automl's layer layout (efficientdet/tf2/efficientdet_keras.py: a
# 1x1 conv + BN per resampled input whose width differs, Keras SeparableConv2D with a pointwise bias, one BN
# per level in the shared class / box nets). automl's efficientdet/README.md ("EfficientDet-lite" table)
# publishes them rounded: 3.2M, 4.2M, 5.3M, 8.4M, 9.3M, 15.1M.
EFFICIENTDET_LITE_PARAMS = {
    "efficientdet_lite0": (3_243_470, 3.2),
    "efficientdet_lite1": (4_248_318, 4.2),
    "efficientdet_lite2": (5_252_334, 5.3),
    "efficientdet_lite3": (8_350_862, 8.4),
    "efficientdet_lite3x": (9_280_862, 9.3),
    "efficientdet_lite4": (15_130_894, 15.1),
}


def meta_detector(name, num_classes, input_size=None):
    with torch.device("meta"):
        return build_detector(name, num_classes, input_size)


@pytest.mark.parametrize("name", sorted(EFFICIENTDET_LITE_PARAMS))
def test_efficientdet_lite_params(name):
    exact, published_millions = EFFICIENTDET_LITE_PARAMS[name]
    params = count_params(meta_detector(name, 90))
    assert params == exact
    assert round(params / 1e6, 1) == published_millions


def test_ssdlite_mobilenet_v3_large_params_equal_torchvision():
    # torchvision SSDLite320_MobileNet_V3_Large_Weights.COCO_V1 meta: num_params 3,440,060 (91 classes,
    # background included; reduced tail, as its COCO model is built)
    assert count_params(meta_detector("ssdlite_mobilenet_v3_large", 91)) == 3_440_060


def test_efficientdet_lite0_anchors_at_320():
    # automl anchors.py: 9 anchors per location on P3-P7, maps 40, 20, 10, 5, 3 at 320 px
    spec = get_detector_spec("efficientdet_lite0")
    assert feature_sizes(spec, 320) == [40, 20, 10, 5, 3]
    assert num_anchors(spec) == 9 * (40**2 + 20**2 + 10**2 + 5**2 + 3**2) == 19_206
    assert meta_detector("efficientdet_lite0", 90).anchor_boxes().shape == (19_206, 4)


def test_ssdlite_anchors_at_320():
    # torchvision ssdlite320: DefaultBoxGenerator([[2, 3]] * 6): 6 boxes per location on maps 20 .. 1
    spec = get_detector_spec("ssdlite_mobilenet_v3_large")
    assert feature_sizes(spec, 320) == [20, 10, 5, 3, 2, 1]
    assert num_anchors(spec) == 6 * (400 + 100 + 25 + 9 + 4 + 1) == 3_234


def test_automl_lite_configs():
    # automl efficientdet/hparams_config.py, efficientdet_lite_param_dict (+ lite_common_param)
    expected = {  # input, fpn_num_filters, fpn_cell_repeats, box_class_repeats, anchor_scale
        "efficientdet_lite0": (320, 64, 3, 3, 3.0),
        "efficientdet_lite1": (384, 88, 4, 3, 3.0),
        "efficientdet_lite2": (448, 112, 5, 3, 3.0),
        "efficientdet_lite3": (512, 160, 6, 4, 4.0),
        "efficientdet_lite3x": (640, 200, 6, 4, 3.0),
        "efficientdet_lite4": (640, 224, 7, 4, 4.0),
    }
    for name, row in expected.items():
        spec = get_detector_spec(name)
        got = (spec.input_size, spec.neck_channels, spec.neck_repeats, spec.head_repeats, spec.anchors.scale)
        assert got == row, name
        assert (spec.act, spec.fusion, spec.min_level, spec.max_level) == ("relu6", "sum", 3, 7)
        assert spec.anchors.aspect_ratios == (1.0, 2.0, 0.5) and spec.anchors.num_scales == 3
        assert spec.box_coder_weights == (1.0, 1.0, 1.0, 1.0)
    assert get_detector_spec("efficientdet_lite3x").backbone == "efficientnet_lite3"
    assert get_detector_spec("ssdlite_mobilenet_v2").box_coder_weights == (10.0, 10.0, 5.0, 5.0)


def test_bifpn_graph_is_the_papers():
    # automl efficientdet/tf2/fpn_configs.py, bifpn_config docstring for P3-P7
    assert bifpn_nodes(3, 7) == [
        (6, (3, 4)),
        (5, (2, 5)),
        (4, (1, 6)),
        (3, (0, 7)),
        (4, (1, 7, 8)),
        (5, (2, 6, 9)),
        (6, (3, 5, 10)),
        (7, (4, 11)),
    ]


def test_list_and_names():
    names = effnet.list_detectors()
    assert names == list_detectors()
    assert {"efficientdet_lite0", "efficientdet_lite3x", "ssdlite_mobilenet_v3_large"} <= set(names)
    assert {"ssdlite_mobilenet_v3_small", "ssdlite_mobilenet_v2", "ssdlite_efficientnet_lite0"} <= set(names)
    assert all(get_detector_spec(n).backbone in effnet.list_models() for n in names)
    assert list_detectors("*lite0") == ["efficientdet_lite0", "ssdlite_efficientnet_lite0"]
    assert list_detectors(family="ssdlite")[0] == "ssdlite_mobilenet_v3_large"
    assert get_detector_spec("EfficientDet-Lite0").name == "efficientdet_lite0"
    with pytest.raises(ValueError, match=r"did you mean efficientdet_lite"):
        get_detector_spec("efficientdet_lite9")


def test_fast_attention_fusion_adds_one_weight_per_edge():
    from dataclasses import replace

    spec = get_detector_spec("efficientdet_lite0")
    fast = replace(spec, fusion="fastattn")
    edges = sum(len(inputs) for _, inputs in bifpn_nodes(3, 7)) * spec.neck_repeats
    assert count_params(meta_detector(fast, 90)) == count_params(meta_detector(spec, 90)) + edges
