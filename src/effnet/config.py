"""Model Maker's ``tflite_model_maker.config`` (ExportFormat, QuantizationConfig) as ``effnet.config``."""

from effnet.export.quantization import QuantizationConfig
from effnet.image_classifier.exporting import ExportFormat

__all__ = ["ExportFormat", "QuantizationConfig"]
