"""Small exported files for the runtime tests: Lite0 at 64 px with its pretrained backbone and a 3-class head
named after the three photos it is tested on."""

import pytest
import torch
from PIL import Image

import effnet

skimage_data = pytest.importorskip("skimage.data")

CLASSES = ["cat", "coffee", "rocket"]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def model():
    torch.manual_seed(0)
    network = effnet.create_model("efficientnet_lite0", num_classes=3, pretrained=True, input_size=64)
    network.labels = CLASSES
    return network.eval()


@pytest.fixture(scope="session")
def onnx_file(model, tmp_path_factory):
    pytest.importorskip("onnxscript")
    from effnet.export import export_onnx

    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx", dynamic_batch=True)


@pytest.fixture(scope="session")
def tflite_file(model, tmp_path_factory):
    pytest.importorskip("litert_torch")
    from effnet.export import export_tflite

    return export_tflite(model, tmp_path_factory.mktemp("tflite") / "model.tflite")


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """cat/, coffee/, rocket/: two crops of one real photo each."""
    root = tmp_path_factory.mktemp("photos")
    for label, array in (
        ("cat", skimage_data.chelsea()),
        ("coffee", skimage_data.coffee()),
        ("rocket", skimage_data.rocket()),
    ):
        (root / label).mkdir()
        image = Image.fromarray(array)
        image.save(root / label / "full.jpg")
        image.crop((20, 10, image.width - 30, image.height - 20)).save(root / label / "crop.png")
    return root
