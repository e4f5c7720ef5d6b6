"""The README's five lines, verbatim (also the Model Maker tutorial's "simple end-to-end example"; the rest of
the tutorial is test_tutorial.py)."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def flower_photos(tmp_path, monkeypatch):
    """A small 3-class folder of real photos (crops of scikit-image's), named like Model Maker's tutorial."""
    from skimage import data

    root = tmp_path / "flower_photos"
    rng = np.random.default_rng(0)
    for label, array in {
        "cat": data.chelsea(),
        "coffee": data.coffee(),
        "astronaut": data.astronaut(),
    }.items():
        (root / label).mkdir(parents=True)
        image = Image.fromarray(array)
        for i in range(12):
            left, top = rng.integers(0, 60, size=2)
            image.crop((left, top, image.width - 60 + left, image.height - 60 + top)).save(
                root / label / f"{i}.jpg"
            )
    monkeypatch.chdir(tmp_path)
    return root


@pytest.mark.slow
def test_five_line_snippet(flower_photos):
    from effnet import image_classifier
    from effnet.image_classifier import DataLoader

    data = DataLoader.from_folder("flower_photos/")
    train_data, test_data = data.split(0.9)
    model = image_classifier.create(train_data, model_spec="efficientnet_lite0")
    loss, accuracy = model.evaluate(test_data)
    model.export("image_classifier.tflite", "image_labels.txt")
    model.export(export_dir="out/")

    assert accuracy == 1.0 and loss < 1.0
    from pathlib import Path

    assert Path("image_labels.txt").read_text().split() == ["astronaut", "cat", "coffee"]
    assert Path("image_classifier.tflite").stat().st_size < 0.35 * 4 * 4.66e6  # int8: ~1/4 of float32
    assert sorted(p.name for p in Path("out").iterdir()) == ["labels.txt", "model.tflite"]
    result = model.evaluate_tflite("out/model.tflite", test_data)
    assert result["accuracy"] == 1.0
