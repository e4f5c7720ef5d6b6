"""``from tflite_model_maker.config import ExportFormat, QuantizationConfig`` -> ``from effnet.config ...``."""

from effnet.export.quantization import QuantizationConfig
from effnet.image_classifier.exporting import ExportFormat

__all__ = ["ExportFormat", "QuantizationConfig"]
