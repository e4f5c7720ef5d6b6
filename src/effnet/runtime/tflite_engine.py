"""`TFLitePredictor`: a `Predictor` for .tflite files, run by the LiteRT interpreter (ai-edge-litert)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from effnet.preprocessing import Preprocessing
from effnet.quiet import native_stderr_captured
from effnet.runtime.errors import (
    ModelFileError,
    check_one_input_one_output,
    detection_output_names,
    metadata_or_error,
    short_reason,
)
from effnet.runtime.metadata import read_tflite_metadata
from effnet.runtime.optional import import_optional
from effnet.runtime.predictor import Predictor, TensorSpec, default_num_threads

_FIX = "re-export it with effnet.export.export_tflite"


class TFLitePredictor(Predictor):
    """Runs a .tflite file with the LiteRT interpreter (XNNPACK on the CPU). ``num_threads``: interpreter
    threads (None: all cores this process may use)."""

    engine = "litert"

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int | None = None,
        preprocessing: Preprocessing | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        interpreter_module = import_optional(
            "ai_edge_litert.interpreter", needed_for=".tflite files", package="ai-edge-litert", extra="litert"
        )
        name = os.fspath(path)
        threads = num_threads or default_num_threads()
        try:
            # LiteRT's C++ "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." line
            with native_stderr_captured():
                self._interpreter = interpreter_module.Interpreter(model_path=name, num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(
                name, f"not a readable .tflite model ({short_reason(error)})", _FIX
            ) from None
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        metadata = metadata_or_error(name, lambda: read_tflite_metadata(name), _FIX)
        if metadata is not None and metadata.output == "detections":
            # LiteRT lists output tensors in no promised order: the signature names them output_0 .. output_3
            signature = self._interpreter.get_signature_runner().get_output_details()
            wanted = detection_output_names(name, list(signature), len(inputs), _FIX)
            self._output_indexes = [signature[key]["index"] for key in wanted]
            outputs = [next(o for o in outputs if o["index"] == self._output_indexes[0])]
        else:
            check_one_input_one_output(name, len(inputs), len(outputs), _FIX)
            self._output_indexes = [outputs[0]["index"]]
        self._input_index = inputs[0]["index"]
        self._output_index = outputs[0]["index"]
        super().__init__(name, _spec(inputs[0]), _spec(outputs[0]), metadata, threads, preprocessing, labels)

    def _invoke(self, array: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input_index, array)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output_index)

    def _invoke_outputs(self, array: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input_index, array)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(index) for index in self._output_indexes]


def _spec(detail: dict[str, Any]) -> TensorSpec:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quantized = np.issubdtype(dtype, np.integer) and scale > 0
    return TensorSpec(
        name=detail["name"],
        shape=tuple(int(dim) for dim in detail["shape"]),
        dtype=dtype,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )
