"""PyTorch -> a single .onnx file (float, fp16, int8 or dynamic int8), with effnet metadata, checked."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.export.bias_correction import channel_means, correct_biases
from effnet.export.checks import ExportData, ExportedPath, check_and_publish, export_data
from effnet.export.conversions import CONVERSIONS, digest_of
from effnet.export.files import destination, one_line_failure, staging_folder
from effnet.export.metadata import metadata_for
from effnet.export.qat import network_to_quantize
from effnet.export.quantization import QuantizationConfig, resolve_quantization
from effnet.export.rounding import PAIRED_WEIGHT_LEVELS, folded_gain, weight_layers
from effnet.export.torch_model import export_copy, input_channels, input_range, random_inputs
from effnet.quiet import quiet_third_party
from effnet.runtime.checksum import seal_onnx
from effnet.runtime.onnx_engine import OnnxPredictor
from effnet.runtime.optional import import_optional

log = logging.getLogger("effnet.export")

MIN_OPSET = 18
INT16_OPSET = 21  # the first opset whose QuantizeLinear / DequantizeLinear take 16-bit integers
INPUT_NAME = "input"


@quiet_third_party()
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
      calibrated on ``representative_data``), ``"int16"`` (the same with uint16 activations: A16W8, for
      NPUs with 16-bit kernels such as ONNX Runtime's QNN provider; the file is opset >= 21, and ONNX
      Runtime's CPU provider runs it slower than float), ``"dynamic"`` (int8 weights, activations
      quantized at run time; ONNX Runtime's dynamic quantization loses accuracy on depthwise
      convolutions and ran 11x slower than float on Lite0: offered for completeness, not recommended), or
      a `QuantizationConfig`.
    - ``representative_data``: see `QuantizationConfig`; required for int8, used for the check otherwise.
    - ``labels``: class names (default: ``model.labels``, or ImageNet's for a 1000-class model).
    - ``dynamic_batch``: any batch size instead of 1. The height and width stay fixed at
      ``model.preprocessing.input_size``.

    The file holds the metadata the runtime reads (model name, preprocessing, labels, input layout NCHW).
    It is built next to ``path`` and moved there only after `effnet.runtime` ran it and it matched PyTorch;
    on failure nothing is left behind. The returned path's ``.check`` says what the check measured.
    The engines' own output (warnings, logs) is hidden; ``EFFNET_VERBOSE=1`` shows it.
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
    if config is not None and config.mode == "int16":
        opset = max(opset, INT16_OPSET)
    network = export_copy(model, "onnx" if config is not None and config.mode == "int8" else None)
    quantization = config.mode if config is not None else "none"
    portable = config is not None and config.portable_onnx
    int8_format = config.int8_format if quantization == "int8" else ""
    metadata = replace(metadata_for(network, labels, "NCHW", quantization), int8_format=int8_format)
    data = export_data(network, config, representative_data)
    exported = network_to_quantize(network, config, data, portable)
    with staging_folder(target) as work:
        staged = work / "model.onnx"

        proto = network_proto(
            network,
            exported,
            lambda module, path: _torch_to_onnx(module, path, dynamic_batch, opset, metadata.output),
            config,
            data,
            input_range(network.preprocessing),
            work,
            portable,
        )
        for key, value in metadata.to_onnx_props().items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, staged)
        seal_onnx(staged)  # SHA-256 of the model bytes, checked by effnet.runtime.load
        return check_and_publish(
            OnnxPredictor(staged), staged, network, data, target, "onnx", config, portable
        )


def network_proto(
    network: nn.Module,
    exported: nn.Module,
    write: Callable[[nn.Module, Path], None],
    config: QuantizationConfig | None,
    data: ExportData,
    value_range: tuple[float, float],
    work: Path,
    portable: bool,
):
    """The ONNX model of ``exported`` (``network``, or its GPTQ-rounded copy), written by ``write(module,
    path)`` into ``work`` and quantized as ``config`` says: float32, static int8 / int16 calibrated on
    ``data`` (bias correction towards ``network``'s own layers), fp16 or dynamic int8. The same float
    model, calibration and settings again give the kept quantized model (`effnet.export.conversions`)."""
    import onnx

    float_file = work / "float.onnx"
    write(exported, float_file)
    if config is None:
        return onnx.load(float_file)
    if config.calibrated:
        reference = None
        if config.corrects_biases and exported is not network:
            # GPTQ-rounded weights: correct towards the original network's layers, not the rounded copy's
            reference = work / "reference.onnx"
            write(network, reference)

        def quantize() -> bytes:
            with one_line_failure(f"{config.mode} ONNX quantization", network):
                return _quantize_static(
                    float_file,
                    work,
                    data.calibration,
                    value_range,
                    config.corrects_biases,
                    sixteen_bit=config.mode == "int16",
                    reference_file=reference,
                    portable=portable,
                ).SerializeToString()

        inputs = (float_file.read_bytes(), reference.read_bytes() if reference is not None else None)
        settings = (config.mode, config.corrects_biases, portable, value_range, data.calibration)
        key = digest_of("onnx static quantization", *inputs, *settings)
        return onnx.load_from_string(CONVERSIONS.computed(key, quantize))
    if config.mode == "fp16":
        return _to_float16(onnx.load(float_file))
    return _quantize_dynamic(float_file, work)


def _torch_to_onnx(network: nn.Module, file: Path, dynamic_batch: bool, opset: int, output: str) -> None:
    sample = torch.from_numpy(random_inputs(network.preprocessing, input_channels(network), 1))
    torch_to_onnx(network, file, sample, opset, [output], dynamic_batch)


def torch_to_onnx(
    network: nn.Module,
    file: Path,
    sample: torch.Tensor,
    opset: int,
    outputs: Sequence[str],
    dynamic_batch: bool = False,
) -> None:
    """Write ``network``'s ONNX file (the dynamo exporter, weights inside the file) for inputs shaped like
    ``sample``, its outputs named ``outputs``; a conversion kept from before when there is one
    (`effnet.export.conversions`)."""
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None

    def convert(module: nn.Module, target: Path) -> None:
        with one_line_failure("ONNX export", module):
            torch.onnx.export(
                module,
                (sample,),
                target,
                dynamo=True,
                external_data=False,  # one self-contained file (the default writes weights beside it)
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(outputs),
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )

    settings = ("onnx", tuple(sample.shape), dynamic_batch, opset, tuple(outputs))
    CONVERSIONS.convert(network, file, convert, *settings, reweight=partial(_reweighted, sample=sample))


def _reweighted(converted: bytes, network: nn.Module, sample: torch.Tensor) -> bytes | None:
    """``converted`` (the ONNX file of a network with ``network``'s graph) holding ``network``'s weights. The
    exporter names each initializer after its parameter or buffer, folds a BatchNorm into the layer before
    it (`effnet.export.rounding.weight_layers`: that layer's weight and bias hold the folded values) and
    leaves out all-zero biases. None where a nonzero tensor has no initializer or one of another shape or
    type, or where the file then does not compute ``network``'s outputs on ``sample``."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    proto = onnx.load_from_string(converted)
    initializers = {entry.name: entry for entry in proto.graph.initializer}
    values = {name: tensor.detach() for name, tensor in network.state_dict().items()}
    names = {module: name for name, module in network.named_modules()}
    for layer, bn in weight_layers(network):
        if bn is None:
            continue
        name, gain = names[layer], folded_gain(bn, bn.num_features)
        bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(gain)
        shift = bn.bias.detach() if bn.bias is not None else torch.zeros_like(gain)
        values[f"{name}.weight"] = layer.weight.detach() * gain.reshape(-1, *[1] * (layer.weight.dim() - 1))
        folded_bias = f"{name}.weight_bias" if f"{name}.weight_bias" in initializers else f"{name}.bias"
        values[folded_bias] = (bias - bn.running_mean) * gain + shift
        for key in bn.state_dict():
            values.pop(f"{names[bn]}.{key}")
    for name, tensor in values.items():
        entry = initializers.get(name)
        if entry is None:
            if tensor.is_floating_point() and tensor.any():
                return _not_reweighted(f"no initializer {name}")
            continue  # all zeros (a bias the exporter left out), or an integer buffer (num_batches_tracked)
        array = tensor.detach().cpu().numpy()
        if tuple(entry.dims) != array.shape or entry.data_type != onnx.helper.np_dtype_to_tensor_dtype(
            array.dtype
        ):
            return _not_reweighted(f"initializer {name} is not {array.dtype} {array.shape}")
        entry.CopyFrom(numpy_helper.from_array(array, name))
    content = proto.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = network(sample)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    computed = session.run(None, {INPUT_NAME: sample.cpu().numpy()})
    if len(computed) != len(expected):
        return _not_reweighted(f"{len(computed)} outputs, not {len(expected)}")
    for want, got in zip(expected, computed, strict=True):
        want = want.detach().cpu().float().numpy()
        tolerance = 1e-4 * max(1.0, float(np.abs(want).max(initial=0.0)))
        if got.shape != want.shape or not np.allclose(got, want, rtol=0.0, atol=tolerance):
            return _not_reweighted("its outputs differ from the network's")
    return content


def _not_reweighted(reason: str) -> None:
    log.debug("ONNX file of the same graph not reused: %s", reason)


# ONNX Runtime static quantization, QDQ format: uint8 activations with int8 weights (U8S8), the fastest of
# ORT's int8 kernels on x86 (docs/int8.md); MinMax calibration. ``sixteen_bit``: uint16 activations (A16W8),
# as NPU toolchains (QNN) expect. ``portable``: the paired layers' weights in 7 bits
# (`_limit_paired_weights`).
def _quantize_static(
    float_file: Path,
    work: Path,
    calibration: np.ndarray,
    value_range: tuple[float, float],
    bias_correction: bool,
    sixteen_bit: bool = False,
    reference_file: Path | None = None,
    portable: bool = False,
):
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
        activation_type=QuantType.QUInt16 if sixteen_bit else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={
            "TensorQuantOverrides": {INPUT_NAME: [{"rmin": np.float32(low), "rmax": np.float32(high)}]}
        },
    )
    proto = onnx.load(quantized)
    if portable:
        _limit_paired_weights(proto, onnx.load(prepared))
    if bias_correction:
        if reference_file is not None:  # the float model the layers are corrected towards, if not float_file
            prepared = work / "reference-prepared.onnx"
            quant_pre_process(str(reference_file), str(prepared))
        correct_biases(OnnxBiasLayers(onnx.load(prepared), proto), calibration)
    _drop_zero_bias_points(proto)
    return proto


def _drop_zero_bias_points(model: Any) -> None:
    """Remove the all-zero zero points of the int32 biases' DequantizeLinear nodes (an optional input that
    defaults to zero): ORT writes one int32 per output channel, about 3% of an int8 file. ``model`` is
    edited in place; ORT fuses the layers as before and computes the same outputs."""
    from onnx import TensorProto, numpy_helper

    tensors = {tensor.name: tensor for tensor in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    dropped = set()
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) < 3:
            continue
        values, zero_point = tensors.get(node.input[0]), tensors.get(node.input[2])
        if values is None or zero_point is None or values.data_type != TensorProto.INT32:
            continue
        if numpy_helper.to_array(zero_point).any():
            continue
        uses[node.input[2]] -= 1
        dropped.add(node.input[2])
        del node.input[2]
    kept = [tensor for tensor in model.graph.initializer if tensor.name not in dropped or uses[tensor.name]]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def _limit_paired_weights(quantized: Any, float_model: Any) -> None:
    """Re-quantize, from ``float_model``'s weights, the int8 weights of every Conv (but depthwise ones),
    Gemm and MatMul of an ORT QDQ file to -`PAIRED_WEIGHT_LEVELS`..`PAIRED_WEIGHT_LEVELS`, one scale per
    output channel, and their int32 biases to the new grid (input scale x weight scale). Without VNNI, ORT's
    x86 uint8 x int8 kernels add products of neighbouring inputs in int16: 7-bit weights cannot overflow it,
    on any input. Depthwise convolutions run in a kernel that does not pair products and keep 8 bits.
    ``quantized`` is edited in place; ORT keeps node names, so each layer is found in ``float_model`` by name.
    """
    from onnx import TensorProto, numpy_helper

    top = PAIRED_WEIGHT_LEVELS
    float_layers = {node.name: node for node in float_model.graph.node}
    float_tensors = {tensor.name: tensor for tensor in float_model.graph.initializer}
    producer = {output: node for node in quantized.graph.node for output in node.output}
    tensors = {tensor.name: tensor for tensor in quantized.graph.initializer}
    for node in quantized.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or node.name not in float_layers:
            continue
        sources = [producer.get(name) for name in node.input[:3]]
        if any(source is None or source.op_type != "DequantizeLinear" for source in sources[:2]):
            continue
        weight, weight_scale = (tensors.get(name) for name in sources[1].input[:2])
        if weight is None or weight_scale is None or weight.data_type != TensorProto.INT8:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type == "Conv" and group > 1 and weight.dims[1] == 1:
            continue  # depthwise
        float_node = float_layers[node.name]
        values = numpy_helper.to_array(float_tensors[float_node.input[1]]).astype(np.float64)
        axis = next((a.i for a in sources[1].attribute if a.name == "axis"), 1) % values.ndim
        per_channel = numpy_helper.to_array(weight_scale).size > 1
        reduced = tuple(i for i in range(values.ndim) if not (per_channel and i == axis))
        largest = np.abs(values).max(axis=reduced, keepdims=True)
        scale = np.where(largest > 0, largest / top, 1.0).astype(np.float32)
        levels = np.clip(np.round(values / scale), -top, top).astype(np.int8)
        weight.CopyFrom(numpy_helper.from_array(levels, weight.name))
        weight_scale.CopyFrom(
            numpy_helper.from_array(
                scale.reshape(-1) if per_channel else scale.reshape(()), weight_scale.name
            )
        )
        bias_source = sources[2] if len(sources) > 2 else None
        if bias_source is None or bias_source.op_type != "DequantizeLinear":
            continue
        bias, bias_scale = (tensors.get(name) for name in bias_source.input[:2])
        input_scale = tensors.get(sources[0].input[1])
        if bias is None or bias_scale is None or input_scale is None:
            continue
        if len(float_node.input) > 2 and float_node.input[2] in float_tensors:
            bias_values = numpy_helper.to_array(float_tensors[float_node.input[2]]).astype(np.float64)
        else:
            bias_values = numpy_helper.to_array(bias) * numpy_helper.to_array(bias_scale).astype(np.float64)
        grid = (numpy_helper.to_array(input_scale).astype(np.float64) * scale.reshape(-1)).astype(np.float32)
        grid = np.broadcast_to(grid, bias_values.shape)
        info = np.iinfo(np.int32)
        integers = np.round(bias_values / grid).clip(info.min, info.max).astype(np.int32)
        bias.CopyFrom(numpy_helper.from_array(integers, bias.name))
        bias_scale.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(grid), bias_scale.name))


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


class OnnxBiasLayers:
    """`effnet.export.bias_correction.BiasLayers` for an ONNX Runtime QDQ file: Conv and Gemm nodes whose
    bias is an int32 initializer behind a DequantizeLinear (ORT keeps node names, so each is found in the
    float model by name). Their outputs are compared before the activation (ORT folds a Clip into the
    range of the QuantizeLinear after it), so a bias shift moves the mean by exactly that shift. The
    quantized model is edited in place."""

    def __init__(self, float_model: Any, quantized: Any) -> None:
        from onnx import TensorProto, numpy_helper

        self._float, self._quantized = float_model, quantized
        float_outputs = {node.name: node.output[0] for node in float_model.graph.node}
        producer = {output: node for node in quantized.graph.node for output in node.output}
        initializers = {tensor.name: tensor for tensor in quantized.graph.initializer}
        self._layers: list[tuple[str, str, Any, np.ndarray]] = []
        for node in list(quantized.graph.node):
            if node.op_type not in ("Conv", "Gemm"):
                continue
            if node.name not in float_outputs:
                raise RuntimeError(f"bias correction: the float model has no layer {node.name!r}")
            if len(node.input) < 3:
                _add_zero_bias(quantized, node, producer, initializers)
            dequantize = producer.get(node.input[2])
            if dequantize is None or dequantize.op_type != "DequantizeLinear":
                continue
            bias, scale = (initializers.get(name) for name in dequantize.input[:2])
            if bias is None or scale is None or bias.data_type != TensorProto.INT32:
                continue
            scale = numpy_helper.to_array(scale).astype(np.float64)
            self._layers.append((node.output[0], float_outputs[node.name], bias, scale))

    def names(self) -> list[str]:
        return [quantized_output for quantized_output, *_ in self._layers]

    def float_means(self, images: np.ndarray) -> list[np.ndarray]:
        outputs = [float_output for _, float_output, *_ in self._layers]
        return [channel_means(values, 1) for values in _run_onnx(self._float, images, outputs)]

    def quantized_mean(self, index: int, images: np.ndarray) -> np.ndarray:
        (values,) = _run_onnx(self._quantized, images, [self._layers[index][0]])
        return channel_means(values, 1)

    def shift_bias(self, index: int, shift: np.ndarray) -> None:
        from onnx import numpy_helper

        _, _, bias, scale = self._layers[index]
        steps = np.round(shift / scale)
        values = numpy_helper.to_array(bias).astype(np.int64) + steps.astype(np.int64)
        info = np.iinfo(np.int32)
        bias.CopyFrom(numpy_helper.from_array(values.clip(info.min, info.max).astype(np.int32), bias.name))


def _add_zero_bias(model: Any, node: Any, producer: dict, initializers: dict) -> None:
    """Give a bias-less quantized Conv / Gemm (an untrained head's zero bias is dropped by the exporter)
    a zero int32 bias on the grid ORT uses for biases (input scale x weight scale), so that it can be
    corrected; ORT fuses it like any other bias."""
    from onnx import helper, numpy_helper

    quantized_inputs = [producer.get(name) for name in node.input[:2]]
    if any(source is None or source.op_type != "DequantizeLinear" for source in quantized_inputs):
        return
    input_scale, weight_scale = (initializers.get(source.input[1]) for source in quantized_inputs)
    weight = initializers.get(quantized_inputs[1].input[0])
    if input_scale is None or weight_scale is None or weight is None:
        return
    input_scale, weight_scale = numpy_helper.to_array(input_scale), numpy_helper.to_array(weight_scale)
    transposed = any(a.name == "transB" and a.i for a in node.attribute)
    channels = weight.dims[0] if node.op_type == "Conv" or transposed else weight.dims[1]
    scale = np.broadcast_to(input_scale * weight_scale, (channels,)).astype(np.float32)
    name = f"{node.name}_zero_bias"
    tensors = {
        f"{name}_quantized": np.zeros(channels, np.int32),
        f"{name}_scale": scale,
        f"{name}_zero_point": np.zeros(channels, np.int32),
    }
    for tensor_name, values in tensors.items():
        model.graph.initializer.append(numpy_helper.from_array(values, tensor_name))
        initializers[tensor_name] = model.graph.initializer[-1]
    dequantize = helper.make_node(
        "DequantizeLinear", list(tensors), [name], name=f"{name}_DequantizeLinear", axis=0
    )
    position = list(model.graph.node).index(node)
    model.graph.node.insert(position, dequantize)
    producer[name] = dequantize
    node.input.append(name)


def _run_onnx(model: Any, images: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    """``outputs`` (tensor names, made graph outputs of a copy) of ``model`` on ``images``."""
    import onnx
    import onnxruntime

    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    # only the nodes the outputs depend on: ONNX Runtime would run the whole graph (bias correction asks
    # for one early layer at a time; a Lite0 ran several times faster this way)
    del exposed.graph.node[:]
    exposed.graph.node.extend(_ancestors(model.graph.node, outputs))
    del exposed.graph.output[:]
    for name in outputs:
        exposed.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the exposed tensors have no declared shape; ORT warns about each
    session = onnxruntime.InferenceSession(
        exposed.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    batch = session.get_inputs()[0].shape[0]
    step = batch if isinstance(batch, int) else 32
    runs = [session.run(outputs, {INPUT_NAME: images[i : i + step]}) for i in range(0, len(images), step)]
    return [np.concatenate([run[k] for run in runs]) for k in range(len(outputs))]


def _ancestors(nodes: Sequence[Any], outputs: Sequence[str]) -> list[Any]:
    """The nodes of ``nodes`` (in their order) that computing ``outputs`` needs."""
    producer = {output: index for index, node in enumerate(nodes) for output in node.output if output}
    needed, pending = set(), [producer[name] for name in outputs if name in producer]
    while pending:
        index = pending.pop()
        if index not in needed:
            needed.add(index)
            pending.extend(producer[name] for name in _inputs(nodes[index]) if name in producer)
    return [node for index, node in enumerate(nodes) if index in needed]


def _inputs(node: Any) -> list[str]:
    """A node's inputs, with the outer names its subgraphs (If, Loop, Scan bodies) read."""
    names = list(node.input)
    for attribute in node.attribute:
        for graph in [attribute.g, *attribute.graphs] if attribute.HasField("g") else attribute.graphs:
            for inner in graph.node:
                names.extend(_inputs(inner))
    return names
