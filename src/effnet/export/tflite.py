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

import copy
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.export.bias_correction import CORRECTION_IMAGES, channel_means, correct_biases
from effnet.export.checks import ExportedPath, check_and_publish, export_data
from effnet.export.conversions import CONVERSIONS, digest_of
from effnet.export.files import destination, one_line_failure, staging_folder
from effnet.export.metadata import metadata_for
from effnet.export.qat import network_to_quantize
from effnet.export.quantization import MIN_ACTIVATION_RANGE, QuantizationConfig, resolve_quantization
from effnet.export.torch_model import export_copy, input_channels, input_range, random_inputs
from effnet.quiet import native_stderr_captured, quiet_third_party
from effnet.runtime.metadata import append_tflite_metadata
from effnet.runtime.optional import import_optional
from effnet.runtime.predictor import default_num_threads, nchw_to_nhwc, to_integers
from effnet.runtime.tflite_engine import TFLitePredictor

_FLOAT16_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
INT16_CORRECTION_IMAGES = 32


@quiet_third_party()
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
    The engines' own output (progress bars, warnings, C++ logs) is hidden; ``EFFNET_VERBOSE=1`` shows it.
    """
    with native_stderr_captured():  # TensorFlow's C++ "I0000 ... oneDNN" lines on import
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
    network = export_copy(model, "tflite" if config is not None and config.mode == "int8" else None)
    quantization_name = config.mode if config is not None else "none"
    metadata = metadata_for(network, labels, "NHWC", quantization_name)
    data = export_data(network, config, representative_data)
    exported = network_to_quantize(network, config, data)
    with staging_folder(target) as work:
        staged = work / "model.tflite"

        float_file = work / "float.tflite"
        _torch_to_tflite(litert_torch, exported, float_file)
        if config is None:
            os.replace(float_file, staged)
        else:
            reference = None
            if config.corrects_biases and exported is not network:
                # GPTQ-rounded weights: correct towards the original network's layers, not the rounded copy's
                _torch_to_tflite(litert_torch, network, work / "reference.tflite")
                reference = (work / "reference.tflite").read_bytes()
            with one_line_failure(f"{config.mode} .tflite quantization", network):
                quantized = _quantize(float_file.read_bytes(), config, data.calibration, network, reference)
            staged.write_bytes(quantized)
        append_tflite_metadata(staged, metadata)
        return check_and_publish(TFLitePredictor(staged), staged, network, data, target, "tflite", config)


def _torch_to_tflite(litert_torch: Any, network: nn.Module, file: Path) -> None:
    nchw = random_inputs(network.preprocessing, input_channels(network), 1)
    sample = torch.from_numpy(nchw_to_nhwc(nchw))

    def convert(module: nn.Module, target: Path) -> None:
        wrapped = litert_torch.to_channel_last_io(module, args=[0]).eval()
        with one_line_failure(".tflite conversion", module), native_stderr_captured():
            litert_torch.convert(wrapped, (sample,)).export(str(target))

    CONVERSIONS.convert(network, file, convert, "tflite", tuple(sample.shape))


# -- ai-edge-quantizer ---------------------------------------------------------------------------------------


def _quantize(
    float_model: bytes,
    config: QuantizationConfig,
    calibration: np.ndarray | None,
    network,
    reference: bytes | None = None,
    float_scope: str | None = None,
) -> bytes:
    """``float_model`` quantized as ``config`` asks; bias correction moves each layer towards
    ``reference`` (a float .tflite of the same network; default ``float_model``). ``float_scope``: a regex
    of tensor names whose operators stay float (a detector's post-processing). The same inputs again give
    the kept result (`effnet.export.conversions`)."""
    low, high = input_range(network.preprocessing)
    settings = replace(config, representative_data=None)
    key = digest_of(
        "tflite quantization", float_model, settings, calibration, low, high, reference, float_scope
    )
    return CONVERSIONS.computed(
        key, lambda: _quantize_afresh(float_model, config, calibration, (low, high), reference, float_scope)
    )


def _quantize_afresh(
    float_model: bytes,
    config: QuantizationConfig,
    calibration: np.ndarray | None,
    value_range: tuple[float, float],
    reference: bytes | None,
    float_scope: str | None,
) -> bytes:
    from ai_edge_quantizer import quantizer, recipe

    if config.mode == "fp16":
        model_recipe = [_float16_entry(op) for op in _FLOAT16_OPS]
        qsvs = None
    elif config.mode == "dynamic":
        model_recipe = recipe.dynamic_wi8_afp32()
        qsvs = None
    else:
        base = recipe.static_wi8_ai16() if config.mode == "int16" else recipe.static_wi8_ai8()
        model_recipe = [
            *base,
            _io_entry(base[0], "INPUT", config.inference_input_type),
            _io_entry(base[0], "OUTPUT", config.inference_output_type),
        ]
        if float_scope is not None:  # the recipe's later entries win where several match an operator
            model_recipe.append(
                {"regex": float_scope, "operation": "*", "algorithm_key": "no_quantize", "op_config": {}}
            )
        with native_stderr_captured():
            qsvs = _calibrate(float_model, model_recipe, calibration, value_range)
    with native_stderr_captured():
        result = quantizer.Quantizer(float_model, model_recipe).quantize(
            qsvs, enable_progress_bar=False, enable_progress_report=False
        )
    quantized = bytearray(result.quantized_model)
    if config.corrects_biases:
        # LiteRT runs int16 layers with its reference kernels (no XNNPACK), ~40x slower than int8: fewer
        # images keep the correction to about a minute for Lite0 at 112 px
        limit = INT16_CORRECTION_IMAGES if config.mode == "int16" else CORRECTION_IMAGES
        layers = TFLiteBiasLayers(reference or float_model, quantized)
        correct_biases(layers, calibration, max_images=limit)
    return bytes(quantized)


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
    nhwc = nchw_to_nhwc(images)
    calib.calibrate({signature: [{argument: image[None]} for image in nhwc]}, manager)
    qsvs = calib.get_model_qsvs()
    for qsv in qsvs.values():
        # A tensor that was (almost) all zeros on the calibration images (a dead channel group in an untrained
        # or pruned network) would get a scale so small that a fused ReLU6's bound, 6 / scale, overflows int32
        # and LiteRT refuses the file ("no_integer_overflow_from_quantization"): give it a minimum range.
        if "min" in qsv and "max" in qsv:
            qsv["max"] = np.maximum(qsv["max"], qsv["min"] + MIN_ACTIVATION_RANGE)
    # The input's range is what any image can produce, not what the calibration images happened to span.
    input_tensor = interpreter.get_input_details()[0]["name"]
    if input_tensor in qsvs:
        low, high = value_range
        qsvs[input_tensor] = {
            "min": np.full((1, 1, 1, 1), low, np.float32),
            "max": np.full((1, 1, 1, 1), high, np.float32),
        }
    return qsvs


# -- bias correction -----------------------------------------------------------------------------------------

_BIASED_OPS = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions"}
_BIASED_OPS["FULLY_CONNECTED"] = "FullyConnectedOptions"
# where each fused activation (NONE, RELU, RELU_N1_TO_1, RELU6) is the identity
_ACTIVATION_RANGES = {0: (-np.inf, np.inf), 1: (0.0, np.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}
# vtable slots of the schema's SubGraph table fields (tensors 4, inputs 6, outputs 8, operators 10)
_SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS = 8, 10
_DEAD = 0.05  # a channel whose float output is clipped on more than 95% of pixels is left alone


class TFLiteBiasLayers:
    """`effnet.export.bias_correction.BiasLayers` for a full-integer .tflite file: CONV_2D,
    DEPTHWISE_CONV_2D and FULLY_CONNECTED operators with an integer bias (int32; int64 in 16x8 files),
    edited in place in the flatbuffer
    (``quantized``, a bytearray).

    The layers are read from "probe" copies of the float and quantized files in which every layer's output
    is also a graph output: the XNNPACK delegate then runs them at full speed (the interpreter's option to
    keep intermediate tensors needs the reference kernels, 20x slower). Layer k of the quantized file is
    read from a copy of its probe cut after layer k's operator, so correcting the layers runs each
    operator about half as often as whole runs would. Outputs are compared after the
    fused activation (the only tensor the file has), so a mean shift becomes a bias shift divided by the
    fraction of the channel's float outputs inside the activation's linear range."""

    def __init__(self, float_model: bytes, quantized: bytearray) -> None:
        self._quantized = _biased_layers(quantized)
        tensors = [layer.tensor for layer in self._quantized]
        self._probe_model = _with_outputs(quantized, tensors, only=True)
        self._probe = _biased_layers(self._probe_model)
        self._lengths = _subgraph_length_positions(self._probe_model)
        float_layers = {
            layer.name: layer.tensor for layer in _biased_layers(bytearray(float_model), quantized=False)
        }
        missing = [layer.name for layer in self._quantized if layer.name not in float_layers]
        if missing:
            raise RuntimeError(f"bias correction: the float .tflite has no layer output {missing[0]!r}")
        self._float_tensors = [float_layers[layer.name] for layer in self._quantized]
        self._float_probe = bytes(_with_outputs(bytearray(float_model), self._float_tensors))
        self._linear_fraction: list[np.ndarray] = []

    def names(self) -> list[str]:
        return [layer.name for layer in self._quantized]

    def float_means(self, images: np.ndarray) -> list[np.ndarray]:
        interpreter = _interpreter(self._float_probe)
        means: list[list[np.ndarray]] = [[] for _ in self._quantized]
        linear: list[list[np.ndarray]] = [[] for _ in self._quantized]
        for image in _nhwc(images):
            _invoke(interpreter, image)
            for k, (layer, tensor) in enumerate(zip(self._quantized, self._float_tensors, strict=True)):
                values = interpreter.get_tensor(tensor)
                low, high = layer.linear_range
                means[k].append(channel_means(values, -1))
                linear[k].append(channel_means((values > low) & (values < high), -1))
        self._linear_fraction = [np.concatenate(fractions).mean(axis=0) for fractions in linear]
        return [np.concatenate(layer_means) for layer_means in means]

    def quantized_mean(self, index: int, images: np.ndarray) -> np.ndarray:
        # the probe's outputs are the layers' outputs in operator order: keep the first index + 1 of them
        # and the operators up to this layer's
        cut = bytearray(self._probe_model)
        operators, outputs = self._lengths
        struct.pack_into("<I", cut, operators, self._probe[index].operator + 1)
        struct.pack_into("<I", cut, outputs, index + 1)
        interpreter = _interpreter(bytes(cut))
        tensor = self._probe[index].tensor
        scale, zero_point = interpreter.get_tensor_details()[tensor]["quantization"]
        means = []
        for image in _nhwc(images):
            _invoke(interpreter, image)
            values = interpreter.get_tensor(tensor).astype(np.float64)
            means.append(channel_means((values - zero_point) * scale if scale else values, -1))
        return np.concatenate(means)

    def shift_bias(self, index: int, shift: np.ndarray) -> None:
        fraction = self._linear_fraction[index]
        shift = np.where(fraction > _DEAD, shift / np.maximum(fraction, _DEAD), 0.0)
        steps = np.round(shift / self._quantized[index].scale).astype(np.int64)
        info = np.iinfo(self._quantized[index].bias.dtype)
        for layers in (self._quantized, self._probe):
            bias = layers[index].bias
            bias[:] = (bias.astype(np.int64) + steps).clip(info.min, info.max)


@dataclass(frozen=True)
class _BiasedLayer:
    name: str  # of the output tensor
    tensor: int  # its index
    operator: int  # the operator's position in the subgraph
    bias: np.ndarray  # int32 (int64 with int16 activations), a writable view into the model's bytes
    scale: np.ndarray  # the bias's quantization scale per output channel
    linear_range: tuple[float, float]  # where the fused activation is the identity


def _biased_layers(model_bytes: bytearray, quantized: bool = True) -> list[_BiasedLayer]:
    """The CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED operators of the first subgraph, in order, with
    an integer bias (``quantized``: int32, or int64 with int16 activations), or a float32 one (a float
    file: only names and outputs are used)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(model_bytes, 0)
    graph = model.Subgraphs(0)
    kinds = {getattr(schema.BuiltinOperator, name): options for name, options in _BIASED_OPS.items()}
    layers = []
    for position in range(graph.OperatorsLength()):
        operator = graph.Operators(position)
        code = model.OperatorCodes(operator.OpcodeIndex())
        options_name = kinds.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        inputs = operator.InputsAsNumpy()
        if options_name is None or len(inputs) < 3 or inputs[2] < 0:
            continue
        bias = graph.Tensors(int(inputs[2]))
        values = _buffer_view(model_bytes, model.Buffers(bias.Buffer()))
        integers = {schema.TensorType.INT32: np.int32, schema.TensorType.INT64: np.int64}
        wanted = integers if quantized else {schema.TensorType.FLOAT32: np.float32}
        if bias.Type() not in wanted or values is None:
            continue
        options = getattr(schema, options_name)()
        table = operator.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        output = int(operator.Outputs(0))
        quantization = bias.Quantization()
        scale = quantization.ScaleAsNumpy() if quantization is not None and quantization.ScaleLength() else 1
        layers.append(
            _BiasedLayer(
                graph.Tensors(output).Name().decode(),
                output,
                position,
                values.view(wanted[bias.Type()]),
                np.asarray(scale, np.float64),
                _ACTIVATION_RANGES.get(options.FusedActivationFunction(), (-np.inf, np.inf)),
            )
        )
    return layers


def _with_outputs(model_bytes: bytearray, tensors: list[int], only: bool = False) -> bytearray:
    """A copy of the model whose first subgraph also outputs ``tensors`` (``only``: outputs just those,
    in that order)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytes(model_bytes))
    graph = model.subgraphs[0]
    kept = [] if only else list(graph.outputs)
    graph.outputs = [*kept, *(t for t in tensors if t not in set(kept))]
    if only:
        model.signatureDefs = []  # they name the outputs dropped here
    return pack_model(model)


def _subgraph_length_positions(model_bytes: bytearray) -> tuple[int, int]:
    """Where the first subgraph's operator count and output count lie in ``model_bytes``: overwriting
    them with smaller numbers cuts the graph after that many operators and outputs."""
    from ai_edge_litert import schema_py_generated as schema

    table = schema.Model.GetRootAs(model_bytes, 0).Subgraphs(0)._tab

    def length_position(field: int) -> int:  # a flatbuffer vector's uint32 length, before its elements
        slot = table.Offset(field)
        if not slot:
            raise RuntimeError("bias correction: the .tflite subgraph has no operators or outputs")
        return slot + table.Pos + struct.unpack_from("<I", table.Bytes, slot + table.Pos)[0]

    return length_position(_SUBGRAPH_OPERATORS), length_position(_SUBGRAPH_OUTPUTS)


def pack_model(model: Any) -> bytearray:
    """A parsed .tflite model (``flatbuffer_utils.read_model_from_bytearray``) back to bytes. Buffers are
    handed to the builder as numpy arrays, which it copies in one piece (as bytes it prepends them one byte
    at a time in Python: seconds per megabyte)."""
    from ai_edge_litert.tools import flatbuffer_utils

    for buffer in model.buffers or []:
        if buffer.data is not None and not isinstance(buffer.data, np.ndarray):
            buffer.data = np.frombuffer(bytes(buffer.data), np.uint8)
    return bytearray(flatbuffer_utils.convert_object_to_bytearray(model))


def _buffer_view(model: bytearray, buffer: Any) -> np.ndarray | None:
    """A writable uint8 view into ``model`` of a flatbuffer Buffer's bytes: inside the flatbuffer, or
    (large tensors) at ``offset`` in the file after it; None when empty."""
    if buffer.DataLength():
        return buffer.DataAsNumpy()
    if buffer.Offset() > 1 and buffer.Size():
        return np.frombuffer(model, np.uint8, buffer.Size(), buffer.Offset())
    return None


def _interpreter(model: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=default_num_threads())
    interpreter.allocate_tensors()
    return interpreter


def _nhwc(images: np.ndarray) -> Iterator[np.ndarray]:
    for image in images:
        yield nchw_to_nhwc(image[None])


def _invoke(interpreter: Any, image: np.ndarray) -> None:
    """Run one NHWC float image, quantizing it when the file takes integers."""
    detail = interpreter.get_input_details()[0]
    if detail["dtype"] != np.float32:
        scale, zero_point = detail["quantization"]
        image = to_integers(image, scale, zero_point, detail["dtype"])
    interpreter.set_tensor(detail["index"], image)
    interpreter.invoke()
