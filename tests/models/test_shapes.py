import pytest
import torch

import effnet

SMALL_MODELS = [
    "efficientnet_b0",
    "efficientnet_lite0",
    "efficientnet_v2_b0",
    "mobilenet_v1_025",
    "mobilenet_v2_050",
    "mobilenet_v3_large_075",
    "mobilenet_v3_small_minimal_100",
]


@pytest.mark.parametrize("name", SMALL_MODELS)
@pytest.mark.parametrize("size", [(224, 224), (112, 112), (97, 131), (32, 32)])
def test_output_shape_at_any_size(name, size):
    model = effnet.create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 7)


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_forward_features_and_head_split(padding):
    model = effnet.create_model("efficientnet_lite0", padding=padding).eval()
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (1, 1280, 4, 4)
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (1, 1280)
        assert torch.allclose(model.forward_head(features), model(x))


def test_num_classes_zero_returns_pooled_features():
    model = effnet.create_model("mobilenet_v3_large_100", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 96, 96)).shape == (1, model.num_features) == (1, 1280)


def test_reset_classifier():
    model = effnet.create_model("efficientnet_lite0", num_classes=0)
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_in_chans():
    model = effnet.create_model("mobilenet_v2_050", in_chans=1, num_classes=3).eval()
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 1, 64, 64), r"\(N, 3, H, W\).*got \(1, 1, 64, 64\)"),
        ((1, 3, 16, 64), "H, W >= 32"),
        ((3, 64, 64), "4-D"),
    ],
)
def test_bad_input_gets_clear_error(shape, message):
    model = effnet.create_model("mobilenet_v2_050")
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"did you mean .*efficientnet_lite0"):
        effnet.create_model("efficientnet_lite")
    with pytest.raises(ValueError, match="unknown model"):
        effnet.create_model("resnet50x")


def test_unknown_override_names_the_argument():
    with pytest.raises(ValueError, match=r"\['colour'\]"):
        effnet.create_model("efficientnet_b0", colour="red")


def test_overrides_reach_the_modules():
    model = effnet.create_model("efficientnet_b0", bn_eps=1e-5, act="relu", input_size=160)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bn.eps == 1e-5 for bn in bns)
    assert not any(isinstance(m, torch.nn.SiLU) for m in model.stages[1].modules())
    assert model.preprocessing.input_size == (160, 160)


def test_drop_rates_and_stochastic_depth():
    model = effnet.create_model("efficientnet_b0", drop_rate=0.5, drop_path_rate=0.3)
    assert model.dropout.p == 0.5
    rates = [m.rate for m in model.modules() if m.__class__.__name__ == "DropPath"]
    assert rates and max(rates) < 0.3 and rates == sorted(rates)
    model.train()
    x = torch.randn(4, 3, 64, 64)
    assert not torch.allclose(model(x), model(x))  # dropout and drop path are random in training
    model.eval()
    assert torch.allclose(model(x), model(x))


def test_default_configs_travel_with_the_model():
    lite = effnet.create_model("efficientnet_lite2")
    assert lite.preprocessing.input_size == (260, 260)
    assert lite.preprocessing.mean == pytest.approx((127 / 255,) * 3)
    assert lite.config.top1 == 77.6 and lite.config.tf_same_padding
    assert all(
        m.eps == 1e-3 and m.momentum == 0.01 for m in lite.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )
    v2 = effnet.create_model("efficientnet_v2_s")
    assert all(m.momentum == 0.1 for m in v2.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not any(isinstance(m, torch.nn.SiLU) for m in effnet.create_model("efficientnet_lite0").modules())


def test_list_models_filters():
    assert effnet.list_models("lite") == [f"efficientnet_lite{i}" for i in range(5)]
    assert effnet.list_models("mobilenet_v3_small*") == [
        "mobilenet_v3_small_075",
        "mobilenet_v3_small_100",
        "mobilenet_v3_small_minimal_100",
    ]
    assert len(effnet.list_models(family="efficientnet_v2")) == 7
    assert len(effnet.list_models()) == 41  # 36 of the EfficientNet/MobileNet family + 5 IResNets
