"""Detector architectures as data: one `DetectorSpec` per named detector, read from two tables below.

EfficientDet-Lite (Tan, Pang & Le, 2020, arXiv:1911.09070; the `efficientdet-lite*` entries of automl's
efficientdet/hparams_config.py): an EfficientNet-Lite backbone's P3-P5 maps, P6/P7 made by downsampling P5,
a BiFPN repeated ``neck_repeats`` times, and shared class / box nets of ``head_repeats`` separable convs.

SSDLite (MobileNetV2 paper, arXiv:1801.04381, Sec. 6.2; the layout of torchvision's
`ssdlite320_mobilenet_v3_large`): the backbone's expanded map inside its last stride-16 -> 32 block and its
final map, four extra depthwise-separable blocks that halve the size, and a depthwise 3x3 + 1x1 predictor
per map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from effnet.models.names import lookup, matching

# the post-processing's defaults (`effnet.models.detection.postprocess`), here where no torch is imported
DEFAULT_SCORE_THRESHOLD = 0.05  # low: applications filter a file's output further
DEFAULT_IOU_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100
DEFAULT_PRE_NMS_TOP_K = 256


@dataclass(frozen=True)
class GridAnchors:
    """EfficientDet / RetinaNet anchors: at every location of a level, ``num_scales`` octave scales times
    the aspect ratios (w/h), sized ``scale * stride * 2**(octave / num_scales)`` before the aspect ratio."""

    scale: float = 4.0
    num_scales: int = 3
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5)

    @property
    def per_location(self) -> int:
        return self.num_scales * len(self.aspect_ratios)


@dataclass(frozen=True)
class SSDAnchors:
    """SSD default boxes (Liu et al., 2016, Sec. 2.2): level k of m has scale s_k, linear from ``min_ratio``
    to ``max_ratio`` of the image; at every location one box of s_k, one of sqrt(s_k * s_k+1), and for each
    aspect ratio r a box of w/h = r and one of w/h = 1/r."""

    min_ratio: float = 0.2
    max_ratio: float = 0.95
    aspect_ratios: tuple[float, ...] = (2.0, 3.0)

    @property
    def per_location(self) -> int:
        return 2 + 2 * len(self.aspect_ratios)

    def scales(self, num_levels: int) -> list[float]:
        step = (self.max_ratio - self.min_ratio) / (num_levels - 1)
        return [self.min_ratio + step * k for k in range(num_levels)] + [1.0]


@dataclass(frozen=True)
class DetectorSpec:
    """One named detector: its backbone (a name from `effnet.list_models()`), input size, neck, head and
    anchors.

    neck_channels / neck_repeats: BiFPN width and number of BiFPN layers (EfficientDet).
    extra_channels: output widths of SSDLite's extra blocks after the backbone (SSDLite).
    head_repeats: separable convs before each predictor (EfficientDet; SSDLite's predictor is one block).
    fusion: how a BiFPN node adds its inputs, "sum" or "fastattn" (learned non-negative weights).
    box_coder_weights: (wx, wy, ww, wh) of `effnet.models.detection.boxes.encode`.
    reduced_tail: halve the backbone's last stage (MobileNetV3 paper Sec. 6.3, torchvision's detection
        layout); no ImageNet weights fit such a backbone.
    """

    name: str
    architecture: Literal["efficientdet", "ssdlite"]
    backbone: str
    input_size: int
    anchors: GridAnchors | SSDAnchors
    box_coder_weights: tuple[float, float, float, float]
    neck_channels: int = 0
    neck_repeats: int = 0
    head_repeats: int = 0
    fusion: Literal["sum", "fastattn"] = "sum"
    extra_channels: tuple[int, ...] = ()
    act: str = "relu6"
    min_level: int = 3  # EfficientDet: the finest level is P3 (stride 8), the coarsest P7 (stride 128)
    max_level: int = 7
    reduced_tail: bool = False
    reference: str = ""

    @property
    def num_levels(self) -> int:
        if self.architecture == "ssdlite":
            return 2 + len(self.extra_channels)
        return self.max_level - self.min_level + 1


# automl efficientdet/hparams_config.py, `efficientdet_lite_param_dict` (+ `lite_common_param`: ReLU6,
# fpn_weight_method 'sum'); the defaults it does not override: min_level 3, max_level 7, num_scales 3,
# aspect_ratios (1, 2, 0.5), anchor_scale 4.0, separable convs.
# name: (backbone, input, BiFPN width, BiFPN layers, head layers, anchor scale)
EFFICIENTDET_LITE = {
    "efficientdet_lite0": ("efficientnet_lite0", 320, 64, 3, 3, 3.0),
    "efficientdet_lite1": ("efficientnet_lite1", 384, 88, 4, 3, 3.0),
    "efficientdet_lite2": ("efficientnet_lite2", 448, 112, 5, 3, 3.0),
    "efficientdet_lite3": ("efficientnet_lite3", 512, 160, 6, 4, 4.0),
    "efficientdet_lite3x": ("efficientnet_lite3", 640, 200, 6, 4, 3.0),
    "efficientdet_lite4": ("efficientnet_lite4", 640, 224, 7, 4, 4.0),
}

# SSDLite at 320 px (torchvision detection/ssdlite.py): extra blocks 512, 256, 256, 128; default boxes with
# aspect ratios 2 and 3 on all six maps, scales 0.2 .. 0.95. MobileNetV3 backbones get the reduced tail.
SSDLITE_EXTRAS = (512, 256, 256, 128)
SSDLITE_BACKBONES = {
    "ssdlite_mobilenet_v3_large": ("mobilenet_v3_large_100", True),
    "ssdlite_mobilenet_v3_small": ("mobilenet_v3_small_100", True),
    "ssdlite_mobilenet_v2": ("mobilenet_v2_100", False),
    "ssdlite_efficientnet_lite0": ("efficientnet_lite0", False),
    "ssdlite_efficientnet_lite1": ("efficientnet_lite1", False),
    "ssdlite_efficientnet_lite2": ("efficientnet_lite2", False),
    "ssdlite_efficientnet_lite3": ("efficientnet_lite3", False),
    "ssdlite_efficientnet_lite4": ("efficientnet_lite4", False),
}


def _specs():
    for name, (backbone, size, width, repeats, head, anchor_scale) in EFFICIENTDET_LITE.items():
        yield DetectorSpec(
            name=name,
            architecture="efficientdet",
            backbone=backbone,
            input_size=size,
            anchors=GridAnchors(scale=anchor_scale),
            box_coder_weights=(1.0, 1.0, 1.0, 1.0),
            neck_channels=width,
            neck_repeats=repeats,
            head_repeats=head,
            fusion="sum",
            reference="automl efficientdet/hparams_config.py",
        )
    for name, (backbone, reduced_tail) in SSDLITE_BACKBONES.items():
        yield DetectorSpec(
            name=name,
            architecture="ssdlite",
            backbone=backbone,
            input_size=320,
            anchors=SSDAnchors(),
            box_coder_weights=(10.0, 10.0, 5.0, 5.0),
            extra_channels=SSDLITE_EXTRAS,
            reduced_tail=reduced_tail,
            reference="arXiv:1801.04381 Sec. 6.2; torchvision detection/ssdlite.py",
        )


_REGISTRY: dict[str, DetectorSpec] = {spec.name: spec for spec in _specs()}


DETECTOR_FAMILIES = ("efficientdet_lite", "ssdlite")


def detector_family(spec: DetectorSpec) -> str:
    return "efficientdet_lite" if spec.architecture == "efficientdet" else "ssdlite"


def list_detectors(pattern: str | None = None, family: str | None = None) -> list[str]:
    """Names of all detectors, optionally filtered by a shell-style ``pattern`` (``"*lite0"``; a pattern
    without wildcards matches names containing it) or ``family`` (`DETECTOR_FAMILIES`)."""
    if family is not None and family not in DETECTOR_FAMILIES:
        raise ValueError(f"unknown detector family {family!r}; choose one of {list(DETECTOR_FAMILIES)}")
    return matching(
        (n for n, s in _REGISTRY.items() if family is None or detector_family(s) == family), pattern
    )


def get_detector_spec(name: str | DetectorSpec) -> DetectorSpec:
    """The spec of a named detector (a `DetectorSpec` passes through)."""
    if isinstance(name, DetectorSpec):
        return name
    return lookup(_REGISTRY, name, "detector", "effnet.list_detectors()")


def level_sizes(input_size: int, num_levels: int, first_stride: int = 8) -> list[int]:
    """Feature map sizes from stride ``first_stride`` on, each half the previous rounded up: what a 3x3 or
    5x5 stride-2 conv (or 3x3 max-pool) with 'same' or symmetric padding gives."""
    size = input_size
    for _ in range(int(math.log2(first_stride))):
        size = (size - 1) // 2 + 1
    sizes = []
    for _ in range(num_levels):
        sizes.append(size)
        size = (size - 1) // 2 + 1
    return sizes
