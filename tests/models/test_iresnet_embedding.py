"""IResNet parameter counts equal arcface_torch's exactly (shared/reference/recognition.md), and the
embedding heads have the documented shapes on EfficientNet backbones at 112 px."""

import pytest
import torch

import effnet
from effnet.models.embedding import FlattenHead, GDCHead

REFERENCE = {"iresnet50": 43_590_848, "iresnet100": 65_156_160}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_iresnet_parameter_counts_match_the_reference(name):
    with torch.device("meta"):
        model = effnet.create_model(name, num_classes=0)
    assert effnet.count_params(model) == REFERENCE[name]


def test_iresnet_is_registered_and_embeds_at_112():
    assert effnet.list_models(family="iresnet")[:4] == ["iresnet18", "iresnet34", "iresnet50", "iresnet100"]
    model = effnet.create_model("iresnet18", num_classes=0).eval()
    assert model.preprocessing.input_size == (112, 112)
    with torch.no_grad():
        features = model.forward_features(torch.zeros(1, 3, 112, 112))
        assert features.shape == (1, 512, 7, 7)
        assert model(torch.randn(2, 3, 112, 112)).shape == (2, 512)
    assert not model.head.features.weight.requires_grad  # arcface_torch freezes the embedding BN scale
    with torch.device("meta"):
        assert effnet.create_model("iresnet18", num_classes=10).classifier.out_features == 10
    with pytest.raises(ValueError, match="no architecture overrides"):
        effnet.create_model("iresnet18", act="relu")


def test_embedder_on_iresnet_body_with_flatten_head_is_iresnet():
    with torch.device("meta"):
        embedder = effnet.create_embedder("iresnet50", head="flatten")
    assert effnet.count_params(embedder) == REFERENCE["iresnet50"]
    assert embedder.head.bn2.eps == 1e-5  # arcface_torch's, so that its checkpoints reproduce exactly


def test_head_batchnorm_eps_defaults_to_1e_3_except_on_iresnet_flatten():
    with torch.device("meta"):
        models = {
            ("lite0", "gdc"): effnet.create_embedder("efficientnet_lite0", head="gdc"),
            ("lite0", "flatten"): effnet.create_embedder("efficientnet_lite0", head="flatten"),
            ("iresnet18", "gdc"): effnet.create_embedder("iresnet18", head="gdc"),
            ("iresnet18", "flatten"): effnet.create_embedder("iresnet18", head="flatten"),
            ("chosen", "gdc"): effnet.create_embedder("efficientnet_lite0", head="gdc", head_bn_eps=1e-5),
        }
    eps = {
        key: next(m.eps for m in model.head.modules() if isinstance(m, torch.nn.BatchNorm2d))
        for key, model in models.items()
    }
    assert eps == {
        ("lite0", "gdc"): 1e-3,
        ("lite0", "flatten"): 1e-3,
        ("iresnet18", "gdc"): 1e-3,
        ("iresnet18", "flatten"): 1e-5,
        ("chosen", "gdc"): 1e-5,
    }


def test_heads_on_efficientnet_at_112():
    with torch.device("meta"):
        gdc = effnet.create_embedder("efficientnet_b0", head="gdc", embedding_dim=512, input_size=112)
        flat = effnet.create_embedder("efficientnet_lite0", head="flatten", input_size=112)
        reduced = effnet.create_embedder("efficientnet_lite0", head="flatten", reduce_channels=512)
        gap = effnet.create_embedder("efficientnet_lite0", head="gap", embedding_dim=128)
    assert isinstance(gdc.head, GDCHead) and gdc.head.conv.kernel_size == (4, 4)  # 112 -> 4x4 final map
    assert gdc.head.conv.groups == 1280
    assert isinstance(flat.head, FlattenHead) and flat.head.fc.in_features == 1280 * 16
    assert reduced.head.fc.in_features == 512 * 16
    assert gap.head.fc.out_features == 128
    model = effnet.create_embedder("efficientnet_lite0", head="gdc", input_size=64).eval()
    assert model.head.conv.kernel_size == (2, 2)
    with torch.no_grad():
        assert model(torch.randn(3, 3, 64, 64)).shape == (3, 512)
    with pytest.raises(ValueError, match="unknown embedding head"):
        effnet.create_embedder("efficientnet_lite0", head="avg")
