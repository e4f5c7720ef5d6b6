"""PyTorch -> a .tflite file through litert-torch (float32), quantized by ai-edge-quantizer (int8, float16,
dynamic), with effnet metadata, checked.

The file takes NHWC input (1, H, W, C), as on-device pipelines feed camera frames; litert-torch folds the
layout change into the first convolution, so it costs nothing. The runtime transposes NCHW batches itself.

int8: measured on pretrained Lite0 at 224, top-1 agreement with the float model on 300 held-out crops of
real photos, 200 calibration crops (benchmarks/export_lite0.py has the current numbers):
- ai-edge-quantizer's static int8 recipe on the float .tflite, calibrated with global min/max: 0.88 (0.97
  on the crops the float model is confident about), 5.4 MB, about 0.6x the float latency. Its default
  calibration keeps a moving average of per-image ranges, which clips activations: 0.74. So we calibrate
  with min/max (`qsv_utils.min_max_update`), as the TFLite converter does. Used.
- litert-torch's PT2E quantizer (stock per-channel symmetric config): 0.58; it observes ReLU6 with the range
  of the convolution before it (see shared/reference/environment.md). Not used.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.export.bias_correction import build_with_bias_correction
from effnet.export.checks import ExportedPath, check_export, export_data
from effnet.export.files import destination, publish, staging_folder
from effnet.export.metadata import metadata_for
from effnet.export.quantization import QuantizationConfig, resolve_quantization
from effnet.export.torch_model import export_copy, input_channels, input_range, random_inputs
from effnet.runtime.errors import short_reason
from effnet.runtime.metadata import append_tflite_metadata
from effnet.runtime.optional import import_optional
from effnet.runtime.predictor import default_num_threads
from effnet.runtime.tflite_engine import TFLitePredictor

_FLOAT16_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def export_tflite(
    model: nn.Module,
    path: str | os.PathLike,
    quantization: QuantizationConfig | str | None = None,
    representative_data: Any = None,
    labels: Sequence[str] | None = None,
) -> ExportedPath:
    """Export ``model`` to a ``.tflite`` file and check it; returns the written path.

    - ``quantization``: None (float32), a `QuantizationConfig` (``for_int8(data, inference_input_type=
      "uint8" | "int8" | "float32", ...)``, ``for_float16()``, ``for_dynamic()``), or ``"int8"`` (float32
      input/output), ``"fp16"``, ``"dynamic"``.
    - ``representative_data``: see `QuantizationConfig`; fills in a config without it.
    - ``labels``: class names (default: ``model.labels``, or ImageNet's for a 1000-class model).

    Input is NHWC (1, H, W, C) at ``model.preprocessing.input_size``. The model name, preprocessing and
    labels travel inside the file (a zip with ``effnet.json`` and ``labels.txt`` appended to the flatbuffer).
    The file is built next to ``path`` and moved there only after `effnet.runtime` ran it and it matched
    PyTorch; on failure nothing is left behind. The returned path's ``.check`` says what was measured.
    """
    litert_torch = import_optional(
        "litert_torch", needed_for=".tflite export", package="litert-torch", extra="litert"
    )
    import_optional("ai_edge_litert", needed_for=".tflite export", package="ai-edge-litert", extra="litert")
    target = destination(path, ".tflite")
    config = resolve_quantization(quantization, representative_data)
    if config is not None:
        import_optional(
            "ai_edge_quantizer",
            needed_for=".tflite quantization",
            package="ai-edge-quantizer",
            extra="litert",
        )
    network = export_copy(model)
    quantization_name = config.mode if config is not None else "none"
    metadata = metadata_for(network, labels, "NHWC", quantization_name)
    data = export_data(network, config, representative_data)
    with staging_folder(target) as work:
        staged = work / "model.tflite"

        def build(exported: nn.Module) -> None:
            float_file = work / "float.tflite"
            _torch_to_tflite(litert_torch, exported, float_file)
            if config is None:
                os.replace(float_file, staged)
            else:
                staged.write_bytes(_quantize(float_file.read_bytes(), config, data.calibration, network))
            append_tflite_metadata(staged, metadata)

        build_with_bias_correction(build, network, config, partial(TFLitePredictor, staged), data.calibration)
        check = check_export(
            TFLitePredictor(staged),
            network,
            data,
            target=target,
            file_format="tflite",
            quantization=quantization_name,
        )
        publish(staged, target)
    return ExportedPath.with_check(target, check)


def _torch_to_tflite(litert_torch: Any, network: nn.Module, file: Path) -> None:
    nchw = random_inputs(network.preprocessing, input_channels(network), 1)
    sample = torch.from_numpy(np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)))
    wrapped = litert_torch.to_channel_last_io(network, args=[0]).eval()
    try:
        with _quiet_litert():
            litert_torch.convert(wrapped, (sample,)).export(str(file))
    except Exception as error:  # torch.export / the MLIR converter raise many exception types
        name = getattr(network, "name", type(network).__name__)
        raise RuntimeError(f".tflite conversion of {name} failed: {short_reason(error)}") from error


@contextlib.contextmanager
def _quiet_litert() -> Iterator[None]:
    """litert-torch prints a progress line per conversion stage unless told not to."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    before = os.environ.get(key)
    os.environ[key] = "n"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


# -- ai-edge-quantizer ---------------------------------------------------------------------------------------


def _quantize(
    float_model: bytes, config: QuantizationConfig, calibration: np.ndarray | None, network
) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    if config.mode == "fp16":
        model_recipe = [_float16_entry(op) for op in _FLOAT16_OPS]
        qsvs = None
    elif config.mode == "dynamic":
        model_recipe = recipe.dynamic_wi8_afp32()
        qsvs = None
    else:
        base = recipe.static_wi8_ai8()
        model_recipe = [
            *base,
            _io_entry(base[0], "INPUT", config.inference_input_type),
            _io_entry(base[0], "OUTPUT", config.inference_output_type),
        ]
        qsvs = _calibrate(float_model, model_recipe, calibration, input_range(network.preprocessing))
    result = quantizer.Quantizer(float_model, model_recipe).quantize(
        qsvs, enable_progress_bar=False, enable_progress_report=False
    )
    return bytes(result.quantized_model)


def _io_entry(static_entry: dict, operation: str, inference_type: str) -> dict:
    """A recipe entry for the model's input or output tensor: int8 (as the rest), uint8, or left float32
    (the quantizer then inserts the quantize / dequantize op inside the file)."""
    entry = copy.deepcopy(static_entry)
    entry["operation"] = operation
    if inference_type == "uint8":
        entry["op_config"]["activation_tensor_config"]["dtype"] = "UINT"
    elif inference_type == "float32":
        entry["algorithm_key"] = "no_quantize"
    return entry


def _float16_entry(operation: str) -> dict:
    return {
        "regex": ".*",
        "operation": operation,
        "algorithm_key": "float_casting",
        "op_config": {
            "weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
            "compute_precision": "FLOAT",
            "explicit_dequantize": True,
        },
    }


def _calibrate(
    float_model: bytes, model_recipe: list, images: np.ndarray, value_range: tuple[float, float]
) -> dict:
    """Activation ranges: global min/max over the calibration images (see the module docstring)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import calibrator, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    interpreter = Interpreter(model_content=float_model)
    signature, names = next(iter(interpreter.get_signature_list().items()))
    (argument,) = names["inputs"]
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(model_recipe)
    calib = calibrator.Calibrator(
        float_model, num_threads=default_num_threads(), qsv_update_func=qsv_utils.min_max_update
    )
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    calib.calibrate({signature: [{argument: image[None]} for image in nhwc]}, manager)
    qsvs = calib.get_model_qsvs()
    # The input's range is what any image can produce, not what the calibration images happened to span.
    input_tensor = interpreter.get_input_details()[0]["name"]
    if input_tensor in qsvs:
        low, high = value_range
        qsvs[input_tensor] = {
            "min": np.full((1, 1, 1, 1), low, np.float32),
            "max": np.full((1, 1, 1, 1), high, np.float32),
        }
    return qsvs
