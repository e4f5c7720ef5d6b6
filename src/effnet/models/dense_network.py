"""What the detector and the segmenter networks share (`effnet.models.detection.Detector`,
`effnet.models.segmentation.Segmenter`): a head on the feature maps of a ``features_only`` backbone, at a
square input size, built from a spec row."""

from __future__ import annotations

from typing import Any

from torch import nn

from effnet.models.network import MIN_INPUT_SIZE, EfficientNet
from effnet.preprocessing import Preprocessing


def check_input_size(spec: Any, input_size: int) -> int:
    """``input_size`` when it is an int of at least `MIN_INPUT_SIZE` pixels; else ValueError."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < MIN_INPUT_SIZE:
        raise ValueError(
            f"{spec.name}: input_size must be an int >= {MIN_INPUT_SIZE} (pixels), got {input_size!r}"
        )
    return input_size


class DenseNetwork(nn.Module):
    """The common part of a network that predicts from a backbone's feature maps: its ``spec``, ``name``,
    ``num_classes``, square ``input_size``, ``backbone`` (built with ``features_only=True``) and the
    backbone's ``preprocessing``. A subclass adds its neck and head."""

    def __init__(self, spec: Any, num_classes: int, backbone: EfficientNet, input_size: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not backbone.features_only:
            raise ValueError(f"{spec.name}: the backbone must be built with features_only=True")
        self.spec = spec
        self.name = spec.name
        self.num_classes = num_classes
        self.input_size = input_size
        self.backbone = backbone
        self.preprocessing: Preprocessing = backbone.preprocessing
