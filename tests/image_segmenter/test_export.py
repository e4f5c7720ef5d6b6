"""Exported segmenters: LR-ASPP as .onnx float and int8, the mobile DeepLabV3 as int8 .tflite, scored by
effnet.runtime as evaluate scores."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from effnet.runtime import load

pytestmark = pytest.mark.slow


def test_onnx_float_and_int8_score_what_evaluate_scores(trained, seg_data, tmp_path):
    _, test = seg_data
    expected = trained.evaluate(test)
    written = trained.export(tmp_path, export_format=["onnx", "label"], quantization_config=None)
    assert (tmp_path / "labels.txt").read_text().split() == trained.label_names
    file = load(written["onnx"])
    assert file.labels == trained.label_names and file.metadata.task == "segmentation"
    mask = file.segment(Image.open(test[0].path).resize((120, 80)))
    assert mask.shape == (80, 120) and mask.dtype == np.uint8  # the size of the image as given
    assert trained.evaluate_tflite(written["onnx"], test)["mIoU"] == pytest.approx(expected["mIoU"], abs=2e-3)
    with pytest.raises(ValueError, match=r"is a segmenter .* use segment"):
        file.predict(test[0].path)
    segment_without_torch = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from effnet import runtime\n"
        f"print(runtime.load({str(written['onnx'])!r}).segment({str(test[0].path)!r}).shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", segment_without_torch], capture_output=True, text=True)
    assert result.stdout.strip() == "(96, 96)", result.stderr[-2000:]
    int8 = trained.export(tmp_path / "int8", export_format="onnx", quantization_config="int8")["onnx"]
    assert int8.stat().st_size < 0.4 * written["onnx"].stat().st_size
    assert abs(trained.evaluate_tflite(int8, test)["mIoU"] - expected["mIoU"]) < 0.02


def test_tflite_int8_of_the_mobile_deeplab(seg_data, tmp_path, one_torch_thread):
    from effnet import image_segmenter

    train, test = seg_data
    model = image_segmenter.create(train, "deeplabv3_mobilenet_v2", epochs=4, input_size=64)
    written = model.export(tmp_path, export_format="tflite")["tflite"]  # default: int8 on training images
    file = load(written)
    assert file.metadata.quantization == "int8" and file.input_spec.dtype == np.uint8
    assert written.check.top1_agreement > 0.95  # pixels agreeing with PyTorch
    assert abs(model.evaluate_tflite(written, test)["mIoU"] - model.evaluate(test)["mIoU"]) < 0.02
