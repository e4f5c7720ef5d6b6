"""The Detector module: output shapes at several sizes, forward == forward_from_features(backbone_features),
anchors outside the state dict, clear input errors, and `create_detector` with bundled backbone weights."""

import numpy as np
import pytest
import torch
from PIL import Image

import effnet
from effnet.models.detection import build_detector
from effnet.models.detection.anchors import num_anchors
from effnet.weights.missing import PretrainedWeightsError

skimage_data = pytest.importorskip("skimage.data")

pytestmark = pytest.mark.usefixtures(
    "one_torch_thread"
)  # two OpenMP threads on a shared 2-core machine stall


def astronaut(size: int, preprocessing) -> torch.Tensor:
    """scikit-image's astronaut photo at size x size, normalized with the model's mean / std: [1, 3, S, S]."""
    image = Image.fromarray(skimage_data.astronaut()).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(preprocessing.mean)[:, None, None]
    std = torch.tensor(preprocessing.std)[:, None, None]
    return ((x - mean) / std)[None]


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("efficientdet_lite0", (64, 100, 128)),
        ("ssdlite_mobilenet_v3_small", (64, 97)),
        ("ssdlite_mobilenet_v2", (64,)),
    ],
)
def test_output_shapes_and_forward_from_features(name, sizes):
    for size in sizes:
        model = build_detector(name, 5, input_size=size).eval()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            logits, deltas = model(x)
            again = model.forward_from_features(model.backbone_features(x))
        anchors = num_anchors(model.spec, size)
        assert logits.shape == (2, anchors, 5) and deltas.shape == (2, anchors, 4)
        assert model.anchor_boxes().shape == (anchors, 4) and model.anchor_boxes().dtype == torch.float32
        assert torch.equal(logits, again[0]) and torch.equal(deltas, again[1])
        assert model.num_classes == 5 and model.input_size == size


def test_backbone_features_are_the_maps_the_neck_uses():
    det = build_detector("efficientdet_lite0", 2, input_size=64)
    assert [f.shape[1] for f in det.backbone_features(torch.randn(1, 3, 64, 64))] == [40, 112, 320]
    ssd = build_detector("ssdlite_mobilenet_v3_large", 2, input_size=64)
    # torchvision's SSDLite: C4's expansion (112 x 6) at stride 16, the reduced tail's 480 at stride 32
    maps = ssd.backbone_features(torch.randn(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(672, 4, 4), (480, 2, 2)]


def test_anchors_are_not_in_the_state_dict_and_weights_round_trip():
    model = build_detector("ssdlite_mobilenet_v3_small", 2, input_size=64).eval()
    state = model.state_dict()
    assert "anchors" not in state and not any(k.endswith("anchors") for k in state)
    other = build_detector("ssdlite_mobilenet_v3_small", 2, input_size=64).eval()
    other.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)[0], other(x)[0])


def test_wrong_input_is_one_clear_error():
    model = build_detector("efficientdet_lite0", 2, input_size=64)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, 64, 64\), got \(1, 3, 96, 96\)"):
        model(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match="input_size must be an int >= 32"):
        build_detector("efficientdet_lite0", 2, input_size=16)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        build_detector("efficientdet_lite0", 0, input_size=64)


@pytest.mark.parametrize(
    "name, backbone",
    [("efficientdet_lite0", "efficientnet_lite0"), ("ssdlite_mobilenet_v2", "mobilenet_v2_100")],
)
def test_create_detector_loads_the_bundled_backbone(name, backbone):
    detector = effnet.create_detector(name, 3, input_size=96).eval()
    classifier = effnet.create_model(backbone, pretrained=True, features_only=True, input_size=96).eval()
    assert detector.preprocessing is detector.backbone.preprocessing
    assert detector.preprocessing.mean == classifier.preprocessing.mean
    x = astronaut(96, detector.preprocessing)
    with torch.no_grad():
        ours = detector.backbone.forward_intermediates(x)
        theirs = classifier(x)
        logits, _ = detector(x)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert logits.shape[-1] == 3 and torch.isfinite(logits).all()
    # a fresh detector differs from the ImageNet backbone
    scratch = effnet.create_detector(name, 3, pretrained_backbone=False, input_size=96).eval()
    with torch.no_grad():
        assert not torch.equal(scratch.backbone.forward_intermediates(x)[-1], theirs[-1])


def test_create_detector_without_weights_is_pretrained_weights_error(monkeypatch, tmp_path):
    with pytest.raises(PretrainedWeightsError, match=r"reduced last stage.*pretrained_backbone=False"):
        effnet.create_detector("ssdlite_mobilenet_v3_large", 3)
    monkeypatch.setenv("EFFNET_OFFLINE", "1")
    monkeypatch.setenv("EFFNET_CACHE", str(tmp_path))
    with pytest.raises(PretrainedWeightsError, match=r"efficientdet_lite3: .*pretrained_backbone=False"):
        effnet.create_detector("efficientdet_lite3", 3, input_size=64)
    assert effnet.create_detector("ssdlite_mobilenet_v3_large", 3, pretrained_backbone=False, input_size=64)


@pytest.mark.parametrize(
    "name", [pytest.param("efficientdet_lite0", marks=pytest.mark.slow), "ssdlite_mobilenet_v3_small"]
)
def test_exports_to_onnx_with_the_same_outputs(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    # 192 px: P7 (2 x 2) is upsampled to P6 (3 x 3), a scale that is not whole
    model = build_detector(name, 3, input_size=192).eval()
    x = astronaut(192, model.preprocessing)
    path = tmp_path / "detector.onnx"
    torch.onnx.export(  # the exporter effnet.export uses
        model, (x,), path, input_names=["images"], output_names=["logits", "deltas"], dynamo=True
    )
    logits, deltas = ort.InferenceSession(str(path)).run(None, {"images": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert np.allclose(logits, expected[0].numpy(), atol=1e-4) and np.allclose(
        deltas, expected[1].numpy(), atol=1e-4
    )
