"""PyTorch -> a single .onnx file (float, fp16, int8 or dynamic int8), with effnet metadata, checked."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
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
from effnet.runtime.onnx_engine import OnnxPredictor
from effnet.runtime.optional import import_optional

log = logging.getLogger("effnet.export")

MIN_OPSET = 18
INPUT_NAME = "input"


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    quantize: QuantizationConfig | str | None = None,
    representative_data: Any = None,
    labels: Sequence[str] | None = None,
    dynamic_batch: bool = False,
    opset: int = MIN_OPSET,
) -> ExportedPath:
    """Export ``model`` to one self-contained ``.onnx`` file and check it; returns the written path.

    - ``quantize``: None (float32), ``"fp16"`` (float16 weights and compute, float32 input/output; half
      the size, but slower than float32 on x86 CPUs),
      ``"int8"`` (ONNX Runtime static QDQ quantization: int8 per-channel weights, uint8 activations
      calibrated on ``representative_data``), ``"dynamic"`` (int8 weights, activations quantized at run
      time; ONNX Runtime's dynamic quantization loses accuracy on depthwise convolutions and ran 11x
      slower than float on Lite0: offered for completeness, not recommended), or a `QuantizationConfig`.
    - ``representative_data``: see `QuantizationConfig`; required for int8, used for the check otherwise.
    - ``labels``: class names (default: ``model.labels``, or ImageNet's for a 1000-class model).
    - ``dynamic_batch``: any batch size instead of 1. The height and width stay fixed at
      ``model.preprocessing.input_size``.

    The file holds the metadata the runtime reads (model name, preprocessing, labels, input layout NCHW).
    It is built next to ``path`` and moved there only after `effnet.runtime` ran it and it matched PyTorch;
    on failure nothing is left behind. The returned path's ``.check`` says what the check measured.
    """
    onnx = import_optional("onnx", needed_for=".onnx export", package="onnx", extra="onnx")
    import_optional("onnxscript", needed_for=".onnx export", package="onnxscript", extra="onnx")
    import_optional("onnxruntime", needed_for=".onnx export", package="onnxruntime", extra="onnx")
    target = destination(path, ".onnx")
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (the dynamo exporter's minimum), got {opset}")
    config = resolve_quantization(quantize, representative_data)
    if config is not None and config.mode == "int8" and config.inference_input_type != "float32":
        log.info("ONNX int8 files keep float32 input and output (QDQ); inference types are for .tflite")
    if config is not None and config.mode == "dynamic":
        log.warning(
            "ONNX Runtime dynamic quantization loses accuracy on depthwise convolutions and runs slower "
            "than float on CPUs (Lite0: 0.49 top-1 agreement, 11x the float latency in "
            "benchmarks/export_lite0.py); prefer quantize='int8'"
        )
    network = export_copy(model)
    quantization = config.mode if config is not None else "none"
    metadata = metadata_for(network, labels, "NCHW", quantization)
    data = export_data(network, config, representative_data)
    with staging_folder(target) as work:
        staged = work / "model.onnx"

        def build(exported: nn.Module) -> None:
            float_file = work / "float.onnx"
            _torch_to_onnx(exported, float_file, dynamic_batch, opset, metadata.output)
            if config is None:
                proto = onnx.load(float_file)
            elif config.mode == "int8":
                proto = _quantize_int8(float_file, work, data.calibration, input_range(network.preprocessing))
            elif config.mode == "fp16":
                proto = _to_float16(onnx.load(float_file))
            else:
                proto = _quantize_dynamic(float_file, work)
            for key, value in metadata.to_onnx_props().items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
            onnx.save(proto, staged)

        build_with_bias_correction(build, network, config, partial(OnnxPredictor, staged), data.calibration)
        check = check_export(
            OnnxPredictor(staged), network, data, target=target, file_format="onnx", quantization=quantization
        )
        publish(staged, target)
    return ExportedPath.with_check(target, check)


def _torch_to_onnx(network: nn.Module, file: Path, dynamic_batch: bool, opset: int, output: str) -> None:
    sample = torch.from_numpy(random_inputs(network.preprocessing, input_channels(network), 1))
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    try:
        torch.onnx.export(
            network,
            (sample,),
            file,
            dynamo=True,
            external_data=False,  # one self-contained file (the default writes weights beside it)
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[output],
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    except Exception as error:  # torch.export / onnxscript raise many exception types
        name = getattr(network, "name", type(network).__name__)
        raise RuntimeError(f"ONNX export of {name} failed: {short_reason(error)}") from error


# ONNX Runtime static quantization, QDQ format. Measured on the project's x86 CPU (AVX-512 VNNI), Lite0
# at 224: uint8 activations with int8 weights (U8S8) ran at 3.8 ms vs 5.8 ms for int8 activations (S8S8, the
# quantize_static default) and 6.5 ms for float, 1 thread, with the same top-1 agreement; see
# benchmarks/export_lite0.py. MinMax calibration matched Percentile and Entropy in agreement and is the
# fastest of the three.
def _quantize_int8(float_file: Path, work: Path, calibration: np.ndarray, value_range: tuple[float, float]):
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantized = work / "prepared.onnx", work / "int8.onnx"
    quant_pre_process(str(float_file), str(prepared))  # shape inference + graph optimization, as ORT advises
    low, high = value_range
    quantize_static(
        str(prepared),
        str(quantized),
        _CalibrationReader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,  # per-tensor weights lose badly on depthwise convolutions
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={
            "TensorQuantOverrides": {INPUT_NAME: [{"rmin": np.float32(low), "rmax": np.float32(high)}]}
        },
    )
    return onnx.load(quantized)


def _quantize_dynamic(float_file: Path, work: Path):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantized = work / "prepared.onnx", work / "dynamic.onnx"
    quant_pre_process(str(float_file), str(prepared))
    quantize_dynamic(str(prepared), str(quantized), per_channel=True, weight_type=QuantType.QInt8)
    return onnx.load(quantized)


def _to_float16(proto):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # keep_io_types: the file still takes and returns float32, so callers need not know it is fp16 inside.
    return convert_float_to_float16(proto, keep_io_types=True)


class _CalibrationReader:
    """Feeds calibration images one at a time (the file's batch may be fixed at 1)."""

    def __init__(self, images: np.ndarray) -> None:
        self._images = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._images, None)
        return None if image is None else {INPUT_NAME: image[None]}
