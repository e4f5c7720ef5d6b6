"""Models and real photos for the export tests, kept small: a 2-core CPU runs the whole folder in seconds."""

import numpy as np
import pytest
import torch
from PIL import Image

import effnet
from effnet.data.samples import random_crops
from effnet.data.transforms import transforms_for

skimage_data = pytest.importorskip("skimage.data")

TEST_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
# Other real photos, cut into crops for calibration: never the test photos themselves.
CALIBRATION_PHOTOS = ("china", "flower", "motorcycle", "camera", "immunohistochemistry", "hubble_deep_field")
LABELS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def photo(name):
    """A real photo shipped by scikit-image or scikit-learn, as an RGB PIL image."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg"))
    if name == "motorcycle":
        return Image.fromarray(skimage_data.stereo_motorcycle()[0])
    return Image.fromarray(getattr(skimage_data, name)()).convert("RGB")


def crops_of(names, count, seed):
    """``count`` random crops (30-100% of a side, random flips) of the named photos."""
    return random_crops([photo(name) for name in names], count, seed)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def photo_crops():
    """``photo_crops(count, seed)``: crops of real photos other than the test photos, for calibration."""
    return lambda count, seed: crops_of(CALIBRATION_PHOTOS, count, seed)


@pytest.fixture(scope="session")
def test_photo_crops():
    """``test_photo_crops(count, seed)``: crops of the test photos (held out from calibration)."""
    return lambda count, seed: crops_of(TEST_PHOTOS, count, seed)


@pytest.fixture(scope="session")
def photo_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in TEST_PHOTOS:
        paths[name] = folder / f"{name}.jpg"
        photo(name).save(paths[name], quality=95)
    return paths


@pytest.fixture(scope="session")
def small_model():
    """Lite0 at 96 px: the pretrained ImageNet backbone (real features) and a fresh 5-class head."""
    torch.manual_seed(0)
    model = effnet.create_model("efficientnet_lite0", num_classes=5, pretrained=True, input_size=96)
    model.labels = LABELS
    return model.eval()


@pytest.fixture(scope="session")
def small_images(small_model):
    """48 preprocessed crops of real photos for ``small_model``: 32 to calibrate on, 16 held out."""
    transform = transforms_for(small_model)
    return np.stack([transform(crop) for crop in crops_of(CALIBRATION_PHOTOS + TEST_PHOTOS, 48, seed=1)])


@pytest.fixture(scope="session")
def lite0():
    """The bundled pretrained EfficientNet-Lite0 at 224 (ImageNet classes)."""
    return effnet.create_model("efficientnet_lite0", pretrained=True).eval()


@pytest.fixture(scope="session")
def warmed_up():
    return warm_up


def warm_up(model, size, steps=3, seed=0):
    """A randomly initialized model with batch-norm statistics from random images, so that its activations
    and logits have a realistic spread (fresh statistics leave them vanishingly small in deep networks)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the warm-up batches
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(8, 3, size, size, generator=generator))
    return model.eval()


@pytest.fixture(scope="session")
def onnx_float_file(small_model, tmp_path_factory):
    """small_model exported to float ONNX: the one real torch -> ONNX conversion of small_model."""
    pytest.importorskip("onnxscript")
    from effnet.export import export_onnx

    return export_onnx(small_model, tmp_path_factory.mktemp("onnx-float") / "model.onnx")


@pytest.fixture
def reuse_onnx_conversion(monkeypatch, onnx_float_file):
    """Skip the torch -> ONNX conversion (seconds) in export_onnx for small_model by copying the float
    file's graph; quantization, metadata, the check and the atomic write still run."""
    import onnx

    from effnet.export import onnx as onnx_export

    proto = onnx.load(onnx_float_file)
    del proto.metadata_props[:]

    def convert(network, file, dynamic_batch, opset, output):
        assert network.name == "efficientnet_lite0" and network.preprocessing.input_size == (96, 96)
        onnx.save(proto, file)

    monkeypatch.setattr(onnx_export, "_torch_to_onnx", convert)


SIZE = 64  # the embedder tests' input size


@pytest.fixture(scope="session")
def photo_arrays(photo_crops, test_photo_crops):
    """96 crops of the calibration photos (calibration and fine-tuning), 32 of the test photos (held out)."""
    from effnet.data.transforms import EvalTransform

    # the embedder's own preprocessing (Lite: (x - 127) / 128): other statistics would put pixels outside
    # the input range the quantizers are given
    transform = EvalTransform(effnet.create_embedder("efficientnet_lite0", "gdc", 128, SIZE).preprocessing)
    calibration = np.stack([transform(crop) for crop in photo_crops(96, seed=3)])
    held_out = np.stack([transform(crop) for crop in test_photo_crops(32, seed=4)])
    return calibration, held_out


@pytest.fixture(scope="session")
def gdc_embedder(photo_arrays):
    """A pretrained Lite0 with a gdc head (128-d) whose BatchNorm statistics come from the calibration
    images: the head type that loses most in int8. Shared by the tests: none may change it."""
    torch.manual_seed(0)
    # arcface_torch's head eps (1e-5, not the default 1e-3): a head that multiplies near-constant channels
    # by up to 316, the hard case the int8 tests are about
    model = effnet.create_embedder("efficientnet_lite0", "gdc", 128, SIZE, pretrained=True, head_bn_eps=1e-5)
    model.eval()
    for bn in model.head.modules():
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
            bn.momentum = None  # a plain average over the batch
            bn.reset_running_stats()
    model.head.train()
    with torch.no_grad():
        model(torch.from_numpy(photo_arrays[0]))
    return model.eval()


@pytest.fixture(scope="session")
def gdc_int8_tflite(gdc_embedder, photo_arrays, tmp_path_factory):
    """``gdc_embedder`` as a post-training int8 .tflite file (nearest weight rounding, no bias correction)
    calibrated on the 96 calibration images: the baseline that GPTQ (test_rounding.py) and fine-tuning
    (test_qat.py) are measured against, converted and quantized once."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    from effnet.export import QuantizationConfig, export_tflite

    calibration, _ = photo_arrays
    config = QuantizationConfig("int8", calibration, 96, bias_correction=False, weight_rounding="nearest")
    return export_tflite(gdc_embedder, tmp_path_factory.mktemp("gdc-int8") / "nearest.tflite", config)


def _mean_cosine(a, b):
    return float(np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def _embed(model, batch):
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


@pytest.fixture(scope="session")
def mean_cosine():
    """``mean_cosine(a, b)``: the mean cosine similarity of two (N, D) arrays, row by row."""
    return _mean_cosine


@pytest.fixture(scope="session")
def embed():
    """``embed(model, batch)``: a PyTorch model's outputs on a float32 numpy batch, as numpy."""
    return _embed
