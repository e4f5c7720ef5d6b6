import numpy as np
import pytest
import torch
from PIL import Image

from effnet import runtime
from effnet.data.dataset import ImageDataset
from effnet.data.transforms import transforms_for
from effnet.preprocessing import Preprocessing
from effnet.runtime import Prediction, Predictor, TensorSpec

skimage_data = pytest.importorskip("skimage.data")
CLASSES = ["cat", "coffee", "rocket"]  # as in conftest.py


@pytest.fixture(scope="module", params=["onnx", "tflite"])
def predictor(request):
    return runtime.load(request.getfixturevalue(f"{request.param}_file"), num_threads=1)


def test_reads_preprocessing_and_labels_from_the_file(predictor, model):
    assert predictor.preprocessing == model.preprocessing
    assert predictor.labels == CLASSES
    assert predictor.model_name == "efficientnet_lite0" and predictor.num_threads == 1
    assert predictor.input_shape[1:] == (3, 64, 64)


def test_predict_takes_paths_pil_images_and_arrays(predictor, model, photo_folder):
    path = photo_folder / "coffee" / "full.jpg"
    image = Image.open(path)
    array = np.asarray(image.convert("RGB"))
    by_path, by_image, by_array = predictor.predict([path, image, array], top_k=2)
    assert by_image == by_array
    # A path may be decoded at reduced size (JPEG DCT scaling): the same classes, nearly the same numbers.
    assert [p.index for p in by_path] == [p.index for p in by_image]
    assert by_path[0].probability == pytest.approx(by_image[0].probability, abs=0.02)
    assert len(by_path) == 2 and all(isinstance(p, Prediction) for p in by_path)
    assert by_path[0].probability >= by_path[1].probability and by_path[0].label in CLASSES
    assert predictor.predict(str(path), top_k=1) == [by_path[:1]]  # one image, not in a list

    with torch.no_grad():
        logits = model(torch.from_numpy(transforms_for(model)(array)[None]))
    probabilities = logits.softmax(dim=1)[0].numpy()
    assert by_array[0].index == int(probabilities.argmax())
    assert by_array[0].probability == pytest.approx(float(probabilities.max()), abs=1e-4)


def test_predict_batch_returns_logits_and_checks_the_shape(predictor, model):
    batch = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(predictor.predict_batch(batch), expected, atol=1e-4)
    np.testing.assert_allclose(predictor.predict_batch(batch[0]), expected[:1], atol=1e-4)
    with pytest.raises(ValueError, match=r"expects preprocessed images of shape \(N, 3, 64, 64\)"):
        predictor.predict_batch(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        predictor.predict(np.zeros((64, 64, 3), np.uint8), top_k=0)


def test_evaluate_on_an_image_dataset(predictor, photo_folder):
    dataset = ImageDataset.from_folder(photo_folder)
    result = predictor.evaluate(dataset, batch_size=4, num_workers=0)
    assert result["num_images"] == 6
    images, labels = dataset.load_arrays(
        transforms_for(predictor.preprocessing), num_workers=0, progress=False
    )
    expected = float((predictor.predict_batch(images).argmax(axis=1) == labels).mean())
    assert result["accuracy"] == pytest.approx(expected)
    other = ImageDataset.from_samples(dataset.paths, dataset.labels, ["a", "b", "c"])
    with pytest.raises(ValueError, match="differ from the file's labels"):
        predictor.evaluate(other)


def test_unreadable_image_names_the_file(predictor, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(ValueError, match=r"broken.jpg: cannot decode"):
        predictor.predict([broken])


def test_labels_and_preprocessing_can_be_overridden(onnx_file):
    predictor = runtime.load(onnx_file, labels=["x", "y", "z"], preprocessing=Preprocessing(input_size=64))
    assert predictor.labels == ["x", "y", "z"] and predictor.preprocessing.crop_pct == 0.875
    assert predictor.predict(skimage_data.rocket(), top_k=3)[0][0].label in {"x", "y", "z"}


class FakeQuantized(Predictor):
    """A uint8-in, int8-out file in NHWC layout, to check the scaling without an engine."""

    def __init__(self):
        self.seen = []
        super().__init__(
            "fake.tflite",
            TensorSpec("input", (1, 4, 4, 3), np.dtype(np.uint8), scale=1 / 128, zero_point=127),
            TensorSpec("output", (1, 2), np.dtype(np.int8), scale=0.5, zero_point=-10),
            metadata=None,
            num_threads=1,
        )

    def _invoke(self, array):
        self.seen.append(array)
        return np.array([[-10, 10]], dtype=np.int8)


def test_quantized_input_and_output_are_scaled():
    fake = FakeQuantized()
    assert fake.input_layout == "NHWC" and fake.input_shape == (1, 3, 4, 4)
    pixels = np.arange(48).reshape(1, 3, 4, 4)
    normalized = ((pixels - 127) / 128).astype(np.float32)  # EfficientNet-Lite: (x - 127) / 128
    outputs = fake.predict_batch(np.concatenate([normalized, normalized]))
    np.testing.assert_array_equal(fake.seen[0], pixels.transpose(0, 2, 3, 1).astype(np.uint8))
    np.testing.assert_allclose(outputs, [[0.0, 10.0], [0.0, 10.0]])  # (q - zero_point) * scale
    assert len(fake.seen) == 2  # a fixed batch of 1: one call per image
    with pytest.raises(ValueError, match="has no effnet metadata"):
        fake.predict(np.zeros((8, 8, 3), np.uint8))
