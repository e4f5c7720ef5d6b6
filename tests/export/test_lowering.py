"""The int8 rewrites of hard-swish, hard-sigmoid and the squeeze-excite pool: the same function, and ops the
engines run in int8 (the speed they buy is measured in benchmarks/int8_families.py, not here)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import effnet
from effnet.export import QuantizationConfig
from effnet.export.lowering import AveragePoolSqueezeExcite, ScaledHardSwish, lower_for_int8
from effnet.export.torch_model import export_copy
from effnet.models.layers import SqueezeExcite

SIZE = 64


@pytest.fixture(scope="module")
def mobilenet_v3(warmed_up):
    """A MobileNetV3-Small (hard-swish, SE with a hard-sigmoid gate) at 64 px with realistic activations."""
    torch.manual_seed(0)
    return warmed_up(effnet.create_model("mobilenet_v3_small_100", num_classes=5, input_size=SIZE), SIZE)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).standard_normal((24, 3, SIZE, SIZE)).astype(np.float32)


def int8_config(images):
    return QuantizationConfig("int8", images, quantization_steps=16, bias_correction=False)


@pytest.mark.parametrize("engine", ["onnx", "tflite"])
def test_rewrite_keeps_the_function(mobilenet_v3, engine):
    lowered = lower_for_int8(copy.deepcopy(mobilenet_v3), engine)
    assert not any(isinstance(m, (nn.Hardswish, nn.Hardsigmoid)) for m in lowered.modules())
    assert any(isinstance(m, ScaledHardSwish) for m in lowered.modules())  # 1/6 folded into weights
    blocks = [m for m in lowered.modules() if isinstance(m, SqueezeExcite)]
    pooled = [isinstance(m, AveragePoolSqueezeExcite) for m in blocks]
    assert pooled and all(pooled) == (engine == "onnx")
    batch = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = mobilenet_v3(batch), lowered(batch)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_export_copy_rewrites_only_for_an_int8_engine(mobilenet_v3):
    assert any(isinstance(m, nn.Hardswish) for m in export_copy(mobilenet_v3).modules())
    assert not any(isinstance(m, nn.Hardswish) for m in export_copy(mobilenet_v3, "tflite").modules())
    assert any(isinstance(m, nn.Hardswish) for m in mobilenet_v3.modules())  # the caller's model is untouched
    with pytest.raises(ValueError, match="engine"):
        lower_for_int8(copy.deepcopy(mobilenet_v3), "tensorrt")


@pytest.mark.slow
def test_int8_onnx_quantizes_hard_swish_hard_sigmoid_and_the_se_pool(mobilenet_v3, images, tmp_path):
    pytest.importorskip("onnxscript")
    import onnx

    from effnet.export import export_onnx

    path = export_onnx(mobilenet_v3, tmp_path / "int8.onnx", quantize=int8_config(images))
    graph = onnx.load(path).graph
    kinds = {node.op_type for node in graph.node}
    assert not kinds & {"HardSwish", "HardSigmoid"}
    producer = {output: node.op_type for node in graph.node for output in node.output}
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    constants = {tensor.name for tensor in graph.initializer}
    elementwise = [node for node in graph.node if node.op_type in ("Add", "Mul", "AveragePool")]
    assert sum(node.op_type == "AveragePool" for node in elementwise) == 9  # one per SE block
    for node in elementwise:  # between DequantizeLinear and QuantizeLinear: ORT runs it as a QLinear op
        assert all(producer.get(name) == "DequantizeLinear" for name in node.input if name not in constants)
        assert consumers[node.output[0]] == ["QuantizeLinear"]


@pytest.mark.slow
def test_int8_tflite_has_no_hard_swish_and_no_float_op(mobilenet_v3, images, tmp_path):
    pytest.importorskip("litert_torch")
    from ai_edge_litert.interpreter import Interpreter

    from effnet.export import export_tflite

    path = export_tflite(mobilenet_v3, tmp_path / "int8.tflite", int8_config(images))
    interpreter = Interpreter(model_path=str(path))
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    operators = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    names = [op["op_name"] for op in operators]
    assert "HARD_SWISH" not in names and "MUL" in names and "ADD" in names
    for op in operators:
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE"):  # the float32 input and output
            assert tensors[op["outputs"][0]]["dtype"] == np.int8, op["op_name"]
