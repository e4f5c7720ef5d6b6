"""effnet.export.detection: a detector and its post-processing in one .onnx / .tflite file, checked against
PyTorch; effnet.runtime's detect on it (boxes in the original image's pixels)."""

import json
import zipfile

import numpy as np
import pytest
import torch
from emulated_cpu import needs_emulator, onnx_outputs
from PIL import Image
from tiny_detector import LABELS, tiny_detector

from effnet.export import ExportCheckError
from effnet.export.detection import DetectorWithPostprocess, export_detector
from effnet.models.detection.postprocess import DetectionPostprocess
from effnet.runtime import ModelFileError, load
from effnet.runtime.detection import resize_for_detection

pytest.importorskip("onnxscript")
skimage_data = pytest.importorskip("skimage.data")

SIZE = 64
POST = {"score_threshold": 0.05, "max_detections": 20, "pre_nms_top_k": 48}
# The tests run in this order on purpose: exports of the one detector follow each other, so that the
# conversions effnet.export keeps in-process (the last few) serve them.


@pytest.fixture(scope="module")
def detector():
    return tiny_detector(input_size=SIZE)


def photo(name):
    return Image.fromarray(getattr(skimage_data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def images(test_photo_crops):
    return test_photo_crops(8, 1)


@pytest.fixture(scope="module")
def onnx_file(detector, images, tmp_path_factory):
    return export_detector(
        detector, tmp_path_factory.mktemp("onnx") / "det.onnx", representative_images=images, **POST
    )


def _torch_outputs(detector, array):
    module = DetectorWithPostprocess(detector, _postprocess(detector)).eval()
    with torch.inference_mode():
        return [value.numpy() for value in module(torch.from_numpy(array))]


def _postprocess(detector):
    return DetectionPostprocess(
        detector.anchor_boxes(), detector.spec.box_coder_weights, SIZE, **{k: v for k, v in POST.items()}
    )


def test_float_onnx_file_finds_what_torch_finds(onnx_file, detector, images):
    check = onnx_file.check
    assert check.quantization == "none" and check.compared > 20 and check.agreement == 1.0
    assert check.box_diff < 1e-4 and check.score_diff < 1e-4
    predictor = load(onnx_file)
    array = np.stack([resize_for_detection(image, predictor.preprocessing)[0] for image in images[:3]])
    got = predictor.detect_batch(array)
    for k, expected in enumerate(_torch_outputs(detector, array)):
        np.testing.assert_allclose(got[k].reshape(expected.shape), expected, atol=1e-4)


def test_file_metadata_says_detector_with_its_layout_and_seal(onnx_file, tmp_path):
    predictor = load(onnx_file)
    metadata = predictor.metadata
    assert predictor.is_detector and metadata.task == "detection" and metadata.output == "detections"
    assert predictor.labels == LABELS and metadata.preprocessing.input_size == (SIZE, SIZE)
    assert metadata.preprocessing.crop_pct == 1.0  # plain resize, nothing cropped
    assert metadata.detection["outputs"] == ["boxes", "classes", "scores", "count"]
    assert metadata.detection["max_detections"] == 20 and metadata.detection["pre_nms_top_k"] == 48
    assert (onnx_file.parent / "labels.txt").read_text().split() == LABELS
    # the SHA-256 seal: one changed byte of the model is refused
    tampered = tmp_path / "tampered.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        load(tampered)


def test_detect_gives_boxes_in_the_original_images_pixels(onnx_file, detector):
    image = photo("astronaut").crop((0, 0, 512, 300))  # 512 x 300: plainly resized to 64 x 64
    predictor = load(onnx_file)
    found = predictor.detect(image, score_threshold=0.3)
    array, size = resize_for_detection(image, predictor.preprocessing)
    assert size == (512, 300)
    boxes, classes, scores, count = _torch_outputs(detector, array[None])
    expected = [
        (boxes[0, i], int(classes[0, i]), scores[0, i]) for i in range(int(count[0])) if scores[0, i] >= 0.3
    ]
    assert len(found) == len(expected) > 0
    for detection, (box, index, score) in zip(found, expected, strict=True):
        ymin, xmin, ymax, xmax = box
        np.testing.assert_allclose(
            detection["box"], [xmin * 512, ymin * 300, xmax * 512, ymax * 300], atol=0.05
        )
        assert detection["index"] == index and detection["label"] == LABELS[index]
        assert detection["score"] == pytest.approx(float(score), abs=1e-4)
    assert all(
        0 <= d["box"][0] <= d["box"][2] <= 512 and 0 <= d["box"][1] <= d["box"][3] <= 300 for d in found
    )
    # a list of images gives one list per image
    assert predictor.detect([image, image], score_threshold=0.3) == [found, found]


def test_a_failed_check_leaves_no_file(detector, images, tmp_path):
    from effnet.runtime.onnx_engine import OnnxPredictor

    def shifted(self, batch):
        boxes, classes, scores, count = original(self, batch)
        return boxes + 0.01, classes, scores, count

    original = OnnxPredictor.detect_batch
    target = tmp_path / "det.onnx"
    # the runtime is patched, not the export: the conversion kept from onnx_file may serve this export
    with pytest.MonkeyPatch.context() as patch, pytest.raises(ExportCheckError, match="nothing was written"):
        patch.setattr(OnnxPredictor, "detect_batch", shifted)
        export_detector(detector, target, representative_images=images[:2], **POST)
    assert list(tmp_path.iterdir()) == []  # no file, no work folder, no labels.txt


@pytest.mark.slow
def test_fp16_onnx_file_keeps_float32_outputs_and_agrees(detector, images, tmp_path):
    file = export_detector(
        detector, tmp_path / "det.onnx", quantization="fp16", representative_images=images, **POST
    )
    assert file.check.quantization == "fp16" and file.check.agreement >= 0.9 and file.check.compared > 10
    predictor = load(file)
    got = predictor.detect_batch(resize_for_detection(images[0], predictor.preprocessing)[0][None])
    assert all(output.dtype == np.float32 for output in got)


@pytest.mark.slow
def test_float_tflite_file_finds_what_torch_finds(detector, images, tmp_path):
    pytest.importorskip("litert_torch")
    file = export_detector(detector, tmp_path / "det.tflite", representative_images=images, **POST)
    check = file.check
    assert check.agreement == 1.0 and check.compared > 20 and check.box_diff < 1e-4
    with zipfile.ZipFile(file) as archive:  # metadata and labels inside the file, as Model Maker puts them
        assert json.loads(archive.read("effnet.json"))["task"] == "detection"
        assert archive.read("labels.txt").decode().split() == LABELS
    predictor = load(file)
    assert predictor.input_layout == "NHWC"
    array = np.stack([resize_for_detection(image, predictor.preprocessing)[0] for image in images[:2]])
    got = predictor.detect_batch(array)
    for k, expected in enumerate(_torch_outputs(detector, array)):
        np.testing.assert_allclose(got[k].reshape(expected.shape), expected, atol=1e-4)


def _int8_file(detector, path, photo_crops, test_photo_crops):
    from effnet.export import QuantizationConfig

    config = QuantizationConfig(
        "int8", quantization_steps=24, bias_correction=False, weight_rounding="nearest"
    )
    images = photo_crops(24, 2) + test_photo_crops(16, 3)  # 24 calibrate, 16 are held out for the check
    return export_detector(detector, path, quantization=config, representative_images=images, **POST)


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["onnx", "tflite"])
def test_int8_file_runs_and_agrees_with_torch(
    detector, file_format, tmp_path, onnx_file, photo_crops, test_photo_crops
):
    if file_format == "tflite":
        pytest.importorskip("litert_torch")
    file = _int8_file(detector, tmp_path / f"det.{file_format}", photo_crops, test_photo_crops)
    check = file.check
    assert check.quantization == "int8" and check.inputs == "held-out images" and check.num_inputs == 16
    assert check.compared > 10 and check.agreement >= 0.5
    float_bytes = onnx_file.stat().st_size
    assert file.stat().st_size < 0.4 * float_bytes
    predictor = load(file)
    assert predictor.metadata.quantization == "int8"
    found = predictor.detect(photo("rocket"), score_threshold=0.3)
    assert all(set(d) == {"box", "label", "index", "score"} for d in found)


@pytest.mark.slow
@needs_emulator
def test_int8_onnx_file_detects_the_same_on_an_emulated_avx2_cpu(
    detector, images, tmp_path, photo_crops, test_photo_crops
):
    """The default int8 .onnx (portable weights: no int16 saturation on CPUs without VNNI) finds the same
    boxes on an AVX2-only CPU as here: network, decoding and NMS in one file."""
    file = _int8_file(detector, tmp_path / "det.onnx", photo_crops, test_photo_crops)
    predictor = load(file)
    array = np.stack([resize_for_detection(image, predictor.preprocessing)[0] for image in images[:4]])
    here = onnx_outputs(file, array, tmp_path, emulated=False)
    emulated = onnx_outputs(file, array, tmp_path, emulated=True)
    boxes, classes, scores, count = range(4)
    assert here[count].sum() > 0  # it found something to compare
    for k in (classes, count):
        np.testing.assert_array_equal(emulated[k], here[k])
    for k in (boxes, scores):  # float decoding: vector exp / sigmoid kernels may differ in the last bits
        np.testing.assert_allclose(emulated[k], here[k], rtol=1e-5, atol=1e-4)


def test_classify_on_a_detector_and_detect_on_a_classifier_are_one_line_errors(onnx_file, tmp_path):
    import effnet
    from effnet.export import export_onnx

    with pytest.raises(ValueError, match=r"is an object detector.*use detect") as error:
        load(onnx_file).predict(photo("coffee"))
    assert "\n" not in str(error.value)
    classifier = effnet.create_model("mobilenet_v1_025", num_classes=3, pretrained=False, input_size=32)
    file = export_onnx(classifier.eval(), tmp_path / "classifier.onnx")
    with pytest.raises(ValueError, match=r"is not an object detector.*use predict") as error:
        load(file).detect(photo("coffee"))
    assert "\n" not in str(error.value)
