"""The exported files, evaluated with the runtime, give what `model.evaluate` gives: float files the same
top-1 on every test image, int8 files the same accuracy within the quantization tolerance."""

import numpy as np
import pytest

from effnet import runtime
from effnet.data.transforms import EvalTransform
from effnet.image_classifier import DataLoader, ModelSpec, create
from effnet.image_classifier.training import predict_logits

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.slow  # a float and an int8 export per format, each evaluated on 150 images


@pytest.fixture(scope="module")
def trained(digits_folder, one_torch_thread):
    train, test = DataLoader.from_folder(digits_folder).split(0.5, seed=0)
    model = create(train, model_spec=ModelSpec("efficientnet_lite0", input_image_shape=(32, 32)), epochs=30)
    return model, test


@pytest.mark.parametrize("file_format", ["onnx", "tflite"])
def test_exported_files_reproduce_model_evaluate(trained, tmp_path, file_format):
    if file_format == "tflite":
        pytest.importorskip("litert_torch")
    model, test = trained
    _, accuracy = model.evaluate(test)
    assert accuracy > 0.6  # a real classifier, or agreement would say little
    torch_top1 = predict_logits(model.network, test)[0].argmax(1).numpy()
    images = np.stack([EvalTransform(model.network.preprocessing)(path) for path in test.paths])

    float_file = model.export(tmp_path / "float", export_format=file_format, quantization_config=None)
    predictor = runtime.load(float_file[file_format])
    np.testing.assert_array_equal(predictor.predict_batch(images).argmax(1), torch_top1)  # every image
    assert predictor.evaluate(test)["accuracy"] == pytest.approx(accuracy)

    # "default": int8, calibrated here on a third of the training images, not all of them: GPTQ, calibration
    # and bias correction each run every calibration image through the network
    calibration, _ = model.train_data.split(0.32, seed=0)
    int8_file = model.export(tmp_path / "int8", export_format=file_format, representative_data=calibration)
    result = runtime.load(int8_file[file_format]).evaluate(test)
    assert result["num_images"] == len(test)
    assert abs(result["accuracy"] - accuracy) <= 0.05  # 150 test images: within 7 images
