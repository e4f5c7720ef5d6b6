"""BiFPN upsampling picks pixels with half-pixel centres, as TF's nearest resize (automl's EfficientDet) and
LiteRT's RESIZE_NEAREST_NEIGHBOR do, so a .tflite detector computes what PyTorch computes."""

import torch

from effnet.models.detection.efficientdet import Resample


def test_a_non_whole_upsampling_uses_half_pixel_centres():
    # 2 -> 3 (P7 -> P6 at 192 px): output pixel i reads input floor((i + 0.5) * 2 / 3) = 0, 1, 1;
    # torch's legacy "nearest" would read floor(i * 2 / 3) = 0, 0, 1
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    out = Resample(1, 1)(x, (3, 3))[0, 0]
    assert out.tolist() == [[0.0, 1.0, 1.0], [2.0, 3.0, 3.0], [2.0, 3.0, 3.0]]


def test_a_whole_upsampling_repeats_each_pixel():
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    assert Resample(1, 1)(x, (4, 4))[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
