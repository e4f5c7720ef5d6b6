"""`OnnxPredictor`: a `Predictor` for .onnx files, run by ONNX Runtime on the CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from effnet.preprocessing import Preprocessing
from effnet.runtime.cpu import cpu_info
from effnet.runtime.errors import (
    ModelFileError,
    check_one_input_one_output,
    detection_output_names,
    metadata_or_error,
    short_reason,
)
from effnet.runtime.metadata import ModelMetadata
from effnet.runtime.optional import import_optional
from effnet.runtime.predictor import Predictor, TensorSpec, default_num_threads

# ONNX tensor element types as onnxruntime names them -> numpy
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}
_FIX = "re-export it with effnet.export.export_onnx"


class OnnxPredictor(Predictor):
    """Runs a .onnx file with ONNX Runtime (CPU). ``num_threads``: intra-op threads (None: all cores this
    process may use)."""

    engine = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int | None = None,
        preprocessing: Preprocessing | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        ort = import_optional("onnxruntime", needed_for=".onnx files", package="onnxruntime", extra="onnx")
        name = os.fspath(path)
        threads = num_threads or default_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the session's warnings are not the user's business
        try:
            self._session = ort.InferenceSession(name, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail ...)
            raise ModelFileError(name, f"not a readable ONNX model ({short_reason(error)})", _FIX) from None
        if _needs_exact_kernels(self._session.get_modelmeta().custom_metadata_map):
            # ORT converts the layers whose 8-bit weights would saturate to exact uint8 x uint8 kernels
            options.add_session_config_entry("session.x64quantprecision", "1")
            self._session = ort.InferenceSession(name, options, providers=["CPUExecutionProvider"])
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        props = self._session.get_modelmeta().custom_metadata_map
        metadata = metadata_or_error(name, lambda: ModelMetadata.from_onnx_props(props, name), _FIX)
        if metadata is not None and metadata.output == "detections":
            self._output_names = detection_output_names(name, [o.name for o in outputs], len(inputs), _FIX)
        else:
            check_one_input_one_output(name, len(inputs), len(outputs), _FIX)
            self._output_names = [outputs[0].name]
        super().__init__(
            name, _spec(name, inputs[0]), _spec(name, outputs[0]), metadata, threads, preprocessing, labels
        )

    def _invoke(self, array: np.ndarray) -> np.ndarray:
        return self._session.run([self.output_spec.name], {self.input_spec.name: array})[0]

    def _invoke_outputs(self, array: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._output_names, {self.input_spec.name: array})


def _needs_exact_kernels(props: dict[str, str]) -> bool:
    """Whether a file's int8 layers would compute wrong results on this CPU with ORT's fast kernels: an int8
    file with 8-bit weights in every layer (int8_format "vnni", or an effnet file older than the format) on
    an x86 CPU without VNNI. Portable int8 files are exact everywhere (`effnet.export.quantization`)."""
    int8 = props.get("quantization") == "int8" and props.get("int8_format") != "portable"
    return int8 and cpu_info().saturates_int8_pairs


def _spec(path: str, arg) -> TensorSpec:
    if arg.type not in _DTYPES:
        raise ModelFileError(path, f"tensor {arg.name!r} has type {arg.type}, expected float or int8", _FIX)
    shape = tuple(dim if isinstance(dim, int) and dim > 0 else None for dim in arg.shape)
    return TensorSpec(arg.name, shape, np.dtype(_DTYPES[arg.type]))
