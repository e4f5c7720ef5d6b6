"""The README's five lines, verbatim, and a TFLite Model Maker script moved over by changing its imports."""

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


@pytest.mark.slow
def test_model_maker_script_runs_after_changing_imports(flower_photos):
    # was: from tflite_model_maker import model_spec, image_classifier
    #      from tflite_model_maker.config import ExportFormat, QuantizationConfig
    #      from tflite_model_maker.image_classifier import DataLoader
    from effnet import image_classifier, model_spec
    from effnet.config import ExportFormat, QuantizationConfig
    from effnet.image_classifier import DataLoader

    data = DataLoader.from_folder("flower_photos")
    train_data, rest_data = data.split(0.8)
    validation_data, test_data = rest_data.split(0.5)
    spec = model_spec.get("efficientnet_lite0")
    model = image_classifier.create(
        train_data,
        model_spec=spec,
        validation_data=validation_data,
        epochs=10,
        batch_size=8,
        dropout_rate=0.2,
    )
    _, accuracy = model.evaluate(test_data)
    top = model.predict_top_k(test_data, k=2)
    config = QuantizationConfig.for_float16()
    files = model.export(export_dir=".", tflite_filename="model_fp16.tflite", quantization_config=config)
    model.export(export_dir=".", export_format=ExportFormat.LABEL)
    model.export(export_dir=".", export_format=[ExportFormat.SAVED_MODEL])

    assert accuracy >= 0.8 and len(top) == len(test_data)
    assert files["tflite"].name == "model_fp16.tflite"
    from pathlib import Path

    assert Path("labels.txt").is_file() and Path("saved_model/model.safetensors").is_file()
    assert model.evaluate_tflite("model_fp16.tflite", test_data)["accuracy"] == pytest.approx(
        accuracy, abs=0.2
    )
