"""Exporting models to on-device files: ``.onnx`` (ONNX Runtime), ``.tflite`` (LiteRT) and ``.rknn``
(Rockchip NPUs, `effnet.export.rknn`), float or quantized.

    from effnet.export import export_onnx, export_tflite, QuantizationConfig
    export_onnx(model, "model.onnx", quantize="int8", representative_data=images)
    export_tflite(model, "model.tflite", QuantizationConfig.for_int8(images))
    export_detector(detector, "det.tflite", quantization="int8", representative_images=paths)

Each export writes one file holding the model name, preprocessing and labels, runs it with `effnet.runtime`,
compares it with the PyTorch model, and only then moves it into place. The engines are optional extras:
``pip install "effnet[onnx]"`` / ``"effnet[litert]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "AGREEMENT_WARNING": "effnet.export.checks",
    "FLOAT_TOLERANCE": "effnet.export.checks",
    "ExportCheck": "effnet.export.checks",
    "ExportCheckError": "effnet.export.checks",
    "ExportedPath": "effnet.export.checks",
    "DetectionExportCheck": "effnet.export.detection_check",
    "export_detector": "effnet.export.detection",
    "export_onnx": "effnet.export.onnx",
    "export_rknn": "effnet.export.rknn",
    "DEFAULT_QUANTIZATION_STEPS": "effnet.export.quantization",
    "QuantizationConfig": "effnet.export.quantization",
    "export_tflite": "effnet.export.tflite",
}

__all__ = [
    "AGREEMENT_WARNING",
    "DEFAULT_QUANTIZATION_STEPS",
    "FLOAT_TOLERANCE",
    "DetectionExportCheck",
    "ExportCheck",
    "ExportCheckError",
    "ExportedPath",
    "QuantizationConfig",
    "export_detector",
    "export_onnx",
    "export_rknn",
    "export_tflite",
]

if TYPE_CHECKING:
    from effnet.export.checks import (
        AGREEMENT_WARNING,
        FLOAT_TOLERANCE,
        ExportCheck,
        ExportCheckError,
        ExportedPath,
    )
    from effnet.export.detection import export_detector
    from effnet.export.detection_check import DetectionExportCheck
    from effnet.export.onnx import export_onnx
    from effnet.export.quantization import DEFAULT_QUANTIZATION_STEPS, QuantizationConfig
    from effnet.export.rknn import export_rknn
    from effnet.export.tflite import export_tflite

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
