"""The formats `effnet bench` measures, by name (no torch: `effnet bench --help` lists them)."""

FORMATS = (
    *("torch", "torch-compile"),
    *("onnx", "onnx-int8", "onnx-int16"),
    *("tflite", "tflite-int8", "tflite-int16"),
)
DEFAULT_FORMATS = ("torch", "onnx", "onnx-int8")
