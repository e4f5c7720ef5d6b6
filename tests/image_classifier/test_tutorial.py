"""The classic TFLite Model Maker image-classification tutorial ("Image classification with TensorFlow Lite
Model Maker", flower_photos), its code kept cell by cell with only the imports changed.

What differs, and why: the "simple end-to-end example" cell is the README's five lines, tested verbatim in
test_snippet.py, so it is not run twice. A small folder of real photos (crops of scikit-image's) named like
the tutorial's stands in for the 3,670 downloaded flower photos, and ``epochs=1`` for the defaults (no
network at test time, and seconds, not hours). The cells that only draw images with matplotlib
(``data.gen_dataset().unbatch().take(25)``: a TensorFlow dataset) are left out. The tutorial's TF Hub cell
(``ModelSpec(uri=...inception_v3...)``) is kept as the one-line error effnet gives for it. The quantization
section's other two `QuantizationConfig` factories (``for_int8`` with representative data, ``for_dynamic``)
have a test of their own, so that each test stays under a minute on a 2-core CPU.
"""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def flower_photos(tmp_path, monkeypatch):
    """3 classes x 10 photo crops in the tutorial's folder layout (flower_photos/<class>/*.jpg): 10 per
    class, so that the tutorial's 0.8 / 0.5 splits leave a test image in each class."""
    from skimage import data

    root = tmp_path / "flower_photos"
    rng = np.random.default_rng(0)
    photos = {
        "daisy": data.chelsea(),
        "dandelion": data.coffee(),
        "roses": data.astronaut(),
    }
    for label, array in photos.items():
        (root / label).mkdir(parents=True)
        image = Image.fromarray(array).convert("RGB")
        for i in range(10):
            left, top = rng.integers(0, 60, size=2)
            box = (left, top, image.width - 60 + left, image.height - 60 + top)
            image.crop(box).resize((160, 120)).save(root / label / f"{i}.jpg")
    monkeypatch.chdir(tmp_path)
    return str(root)


@pytest.mark.slow
def test_model_maker_tutorial(flower_photos, capsys):
    # was: from tflite_model_maker import model_spec
    #      from tflite_model_maker import image_classifier
    #      from tflite_model_maker.config import ExportFormat
    #      from tflite_model_maker.config import QuantizationConfig
    #      from tflite_model_maker.image_classifier import DataLoader
    from effnet import image_classifier, model_spec
    from effnet.config import ExportFormat, QuantizationConfig
    from effnet.image_classifier import DataLoader

    image_path = flower_photos  # was: tf.keras.utils.get_file('flower_photos.tgz', ..., extract=True)

    # Simple end-to-end example: verbatim in test_snippet.test_five_line_snippet (the README's lines)

    # Detailed process: step 1, load input data specific to an on-device ML app
    data = DataLoader.from_folder(image_path)
    train_data, rest_data = data.split(0.8)
    validation_data, test_data = rest_data.split(0.5)

    # Step 2, customize the TensorFlow model
    model = image_classifier.create(train_data, validation_data=validation_data, epochs=1)
    model.summary()
    summary = capsys.readouterr().out
    assert 'Model: "efficientnet_lite0", 3 classes' in summary and "Trainable params: 3,843" in summary

    # Step 3, evaluate the customized model
    loss, accuracy = model.evaluate(test_data)
    predicts = model.predict_top_k(test_data)
    assert len(predicts) == len(test_data) and predicts[0][0][0] in data.index_to_label

    # Step 4, export to a TensorFlow Lite model
    model.export(export_dir=".")
    model.export(export_dir=".", export_format=ExportFormat.LABEL)
    tflite_result = model.evaluate_tflite("model.tflite", test_data)
    assert abs(tflite_result["accuracy"] - accuracy) <= 0.4  # int8 (the default) on a few test images
    model.export(export_dir=".", export_format=ExportFormat.SAVED_MODEL)
    note = capsys.readouterr().err
    assert "ExportFormat.SAVED_MODEL wrote saved_model/ as effnet's own run folder" in note
    assert image_classifier.load("saved_model").index_to_label == data.index_to_label

    # Advanced usage: post-training quantization
    config = QuantizationConfig.for_float16()
    model.export(export_dir=".", tflite_filename="model_fp16.tflite", quantization_config=config)
    assert model.evaluate_tflite("model_fp16.tflite", test_data)["accuracy"] == pytest.approx(accuracy)

    # Change the model: one of the models supported in this library (weights bundled, offline)
    model = image_classifier.create(
        train_data, model_spec=model_spec.get("mobilenet_v2"), validation_data=validation_data, epochs=1
    )
    loss, accuracy = model.evaluate(test_data)
    assert model.network.weights_report is not None and accuracy >= 0.6

    # Change to the model in TensorFlow Hub: effnet builds networks by name, and says which to pass
    with pytest.raises(ValueError, match="effnet does not use TF Hub"):
        inception_v3_spec = image_classifier.ModelSpec(
            uri="https://tfhub.dev/google/imagenet/inception_v3/feature_vector/1"
        )
        inception_v3_spec.input_image_shape = [299, 299]

    # Change the training hyperparameters
    model = image_classifier.create(train_data, validation_data=validation_data, epochs=2)
    loss, accuracy = model.evaluate(test_data)
    assert accuracy >= 0.6 and loss < np.log(3) and len(model.history) == 2


@pytest.mark.slow
def test_model_maker_tutorial_quantization_configs(flower_photos):
    """The tutorial's quantization cell with the other factories: full-integer int8 calibrated on
    representative data (uint8 input and output, Model Maker's default), and dynamic-range int8 weights."""
    from effnet import image_classifier
    from effnet.config import ExportFormat, QuantizationConfig
    from effnet.image_classifier import DataLoader

    train_data, test_data = DataLoader.from_folder(flower_photos).split(0.8)
    model = image_classifier.create(train_data, epochs=1)
    _, accuracy = model.evaluate(test_data)
    config = QuantizationConfig.for_int8(representative_data=train_data)
    model.export(export_dir=".", tflite_filename="model_int8.tflite", quantization_config=config)
    config = QuantizationConfig.for_dynamic()
    model.export(export_dir=".", tflite_filename="model_dynamic.tflite", quantization_config=config)
    written = model.export(export_dir="run", export_format=[ExportFormat.SAVED_MODEL, ExportFormat.LABEL])
    assert (written["checkpoint"] / "model.safetensors").is_file() and written["label"].is_file()
    from effnet.runtime import load

    int8 = load("model_int8.tflite")
    assert int8.input_spec.quantized and int8.input_spec.dtype == np.uint8
    for name in ("model_int8.tflite", "model_dynamic.tflite"):
        assert model.evaluate_tflite(name, test_data)["accuracy"] >= accuracy - 0.4, name
