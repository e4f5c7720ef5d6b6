"""Detector architectures (layer 1, no I/O, no weights): EfficientDet-Lite and SSDLite as `DetectorSpec`
rows, the `Detector` module built from them, anchors and the box coding. `effnet.create_detector` adds the
backbone's ImageNet weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

_EXPORTS = {
    "Detector": "effnet.models.detection.detector",
    "build_detector": "effnet.models.detection.detector",
    "DetectorSpec": "effnet.models.detection.spec",
    "GridAnchors": "effnet.models.detection.spec",
    "SSDAnchors": "effnet.models.detection.spec",
    "get_detector_spec": "effnet.models.detection.spec",
    "list_detectors": "effnet.models.detection.spec",
}

__all__ = [
    "Detector",
    "DetectorSpec",
    "GridAnchors",
    "SSDAnchors",
    "build_detector",
    "get_detector_spec",
    "list_detectors",
]

if TYPE_CHECKING:
    from effnet.models.detection.detector import Detector, build_detector
    from effnet.models.detection.spec import (
        DetectorSpec,
        GridAnchors,
        SSDAnchors,
        get_detector_spec,
        list_detectors,
    )

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
