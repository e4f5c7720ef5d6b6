"""The Model Maker object-detection workflow: Pascal VOC / CSV / COCO annotations in, a trained, evaluated,
exported detector out.

    from effnet import object_detector
    train_data = object_detector.DataLoader.from_pascal_voc("images/", "annotations/", label_map)
    model = object_detector.create(train_data, model_spec="efficientdet_lite0", epochs=20)
    print(model.evaluate(test_data))          # {"AP": ..., "AP50": ..., "AP_/cat": ...}
    model.export(export_dir="out/")

Code written for TFLite Model Maker's ``object_detector`` runs after changing its import to
``from effnet import object_detector``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "DataLoader": "effnet.data.detection:DetectionData",
    "ObjectDetector": "effnet.object_detector.detector",
    "create": "effnet.object_detector.detector",
    "load": "effnet.object_detector.detector",
    "DetectorHParams": "effnet.object_detector.hparams",
    "EfficientDetSpec": "effnet.object_detector.model_spec",
    "EfficientDetLite0Spec": "effnet.object_detector.model_spec",
    "EfficientDetLite1Spec": "effnet.object_detector.model_spec",
    "EfficientDetLite2Spec": "effnet.object_detector.model_spec",
    "EfficientDetLite3Spec": "effnet.object_detector.model_spec",
    "EfficientDetLite4Spec": "effnet.object_detector.model_spec",
    "RunOptions": "effnet.training.options",
    "PretrainedWeightsError": "effnet.weights.missing",
}

__all__ = [
    "DataLoader",
    "DetectorHParams",
    "EfficientDetLite0Spec",
    "EfficientDetLite1Spec",
    "EfficientDetLite2Spec",
    "EfficientDetLite3Spec",
    "EfficientDetLite4Spec",
    "EfficientDetSpec",
    "ObjectDetector",
    "PretrainedWeightsError",
    "RunOptions",
    "create",
    "load",
    "model_spec",
]

if TYPE_CHECKING:
    from effnet.data.detection import DetectionData as DataLoader
    from effnet.object_detector import model_spec
    from effnet.object_detector.detector import ObjectDetector, create, load
    from effnet.object_detector.hparams import DetectorHParams
    from effnet.object_detector.model_spec import (
        EfficientDetLite0Spec,
        EfficientDetLite1Spec,
        EfficientDetLite2Spec,
        EfficientDetLite3Spec,
        EfficientDetLite4Spec,
        EfficientDetSpec,
    )
    from effnet.training.options import RunOptions
    from effnet.weights.missing import PretrainedWeightsError

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
