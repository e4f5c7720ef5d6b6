"""Segmenter architectures as data: one `SegmenterSpec` per named segmenter, read from the table below.

LR-ASPP (MobileNetV3 paper, Howard et al., 2019, arXiv:1905.02244, Sec. 6.3; the layout of torchvision's
`lraspp_mobilenet_v3_large`): the backbone's last map at output stride 16 (last stage dilated) goes through a
1x1 conv + BN + ReLU, gated per channel by a sigmoid of its global average; that is upsampled to the stride-8
map, and a 1x1 classifier of each is summed.

Mobile DeepLabV3 (MobileNetV2 paper, Sandler et al., 2018, arXiv:1801.04381, Sec. 6.3): DeepLabV3's ASPP on
the backbone's last map at output stride 16, with the atrous 3x3 branches removed (the paper found them
costly for little gain): a 1x1 conv branch and an image-pooling branch, concatenated, projected by a 1x1 conv
and classified. ``atrous_rates`` puts the 3x3 branches back (DeepLabV3's (6, 12, 18) at output stride 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from effnet.models.names import lookup, matching


@dataclass(frozen=True)
class SegmenterSpec:
    """One named segmenter: its head, backbone (a name from `effnet.list_models()`), output stride and
    default input size.

    head_channels: LR-ASPP's inner width (128) / the ASPP branches' width (256).
    atrous_rates: DeepLabV3's atrous 3x3 branches (none in the mobile head).
    output_stride: the backbone's total stride; below 32 its last stages are dilated
        (`effnet.models.dilation.dilate`).
    """

    name: str
    head: Literal["lraspp", "deeplabv3"]
    backbone: str
    output_stride: int = 16
    input_size: int = 512
    head_channels: int = 128
    atrous_rates: tuple[int, ...] = ()
    low_level_stride: int = 8  # LR-ASPP's second input
    reference: str = ""


# name: (head, backbone). Both heads at output stride 16, as both papers evaluate their mobile models.
SEGMENTERS = {
    "lraspp_mobilenet_v3_large": ("lraspp", "mobilenet_v3_large_100"),
    "lraspp_mobilenet_v3_small": ("lraspp", "mobilenet_v3_small_100"),
    "lraspp_mobilenet_v2": ("lraspp", "mobilenet_v2_100"),
    "lraspp_efficientnet_lite0": ("lraspp", "efficientnet_lite0"),
    "lraspp_efficientnet_lite1": ("lraspp", "efficientnet_lite1"),
    "lraspp_efficientnet_lite2": ("lraspp", "efficientnet_lite2"),
    "deeplabv3_mobilenet_v2": ("deeplabv3", "mobilenet_v2_100"),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3", "mobilenet_v3_large_100"),
    "deeplabv3_efficientnet_lite0": ("deeplabv3", "efficientnet_lite0"),
    "deeplabv3_efficientnet_lite1": ("deeplabv3", "efficientnet_lite1"),
    "deeplabv3_efficientnet_lite2": ("deeplabv3", "efficientnet_lite2"),
}
REFERENCES = {
    "lraspp": "arXiv:1905.02244 Sec. 6.3; torchvision segmentation/lraspp.py",
    "deeplabv3": "arXiv:1801.04381 Sec. 6.3 (ASPP without atrous branches); arXiv:1706.05587",
}
HEAD_CHANNELS = {"lraspp": 128, "deeplabv3": 256}


def _specs():
    for name, (head, backbone) in SEGMENTERS.items():
        yield SegmenterSpec(
            name=name,
            head=head,
            backbone=backbone,
            head_channels=HEAD_CHANNELS[head],
            reference=REFERENCES[head],
        )


_REGISTRY: dict[str, SegmenterSpec] = {spec.name: spec for spec in _specs()}
DEFAULT_SEGMENTER = "lraspp_efficientnet_lite0"  # its backbone's ImageNet weights are bundled (offline)


def list_segmenters(pattern: str | None = None) -> list[str]:
    """Names of all segmenters, optionally filtered by a shell-style ``pattern`` (``"lraspp*"``; a pattern
    without wildcards matches names containing it)."""
    return matching(_REGISTRY, pattern)


def get_segmenter_spec(name: str | SegmenterSpec) -> SegmenterSpec:
    """The spec of a named segmenter (a `SegmenterSpec` passes through)."""
    if isinstance(name, SegmenterSpec):
        return name
    return lookup(_REGISTRY, name, "segmenter", "effnet.list_segmenters()")
