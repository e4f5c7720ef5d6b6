"""Segmentation architectures (layer 1, no I/O, no weights): LR-ASPP and mobile DeepLabV3 heads over any
backbone of the family, as `SegmenterSpec` rows, and the `Segmenter` module built from them.
`effnet.create_segmenter` adds the backbone's ImageNet weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

_EXPORTS = {
    "Segmenter": "effnet.models.segmentation.segmenter",
    "build_segmenter": "effnet.models.segmentation.segmenter",
    "SegmenterSpec": "effnet.models.segmentation.spec",
    "get_segmenter_spec": "effnet.models.segmentation.spec",
    "list_segmenters": "effnet.models.segmentation.spec",
}

__all__ = ["Segmenter", "SegmenterSpec", "build_segmenter", "get_segmenter_spec", "list_segmenters"]

if TYPE_CHECKING:
    from effnet.models.segmentation.segmenter import Segmenter, build_segmenter
    from effnet.models.segmentation.spec import SegmenterSpec, get_segmenter_spec, list_segmenters

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
