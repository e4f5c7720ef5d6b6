"""The formats `effnet bench` measures, by name (no torch: `effnet bench --help` lists them)."""

FORMATS = (
    *("torch", "torch-compile"),
    *("onnx", "onnx-int8", "onnx-int16"),
    *("tflite", "tflite-int8", "tflite-int16"),
    *("rknn-int8", "rknn-int16", "rknn-fp16"),  # rk3588, size only: the simulator has no latency
)
DEFAULT_FORMATS = ("torch", "onnx", "onnx-int8")
