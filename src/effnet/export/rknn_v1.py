"""An ONNX file for the first-generation Rockchip NPUs (RV1126 / RV1109, RK1808), which only the older
rknn-toolkit (v1, 1.7.x) converts. That toolkit needs Python 3.6-3.8, TensorFlow 1.x and onnx 1.6, so effnet
does not drive it (it cannot be installed beside effnet or in a modern environment); effnet writes the ONNX
file it reads and checks it against the toolkit's documented limits. docs/rknn.md has the conversion script.

    from effnet.export.rknn_v1 import export_onnx_for_rknn_v1
    export_onnx_for_rknn_v1(model, "model-rv1126.onnx")   # opset 12, IR version 6, float32, checked

rknn-toolkit 1.7.5's operator support page says: ONNX 1.6.0, IR version 6, opsets 8 to 12; its operator
list is a spreadsheet (RKNN_OP_Support_And_Limit.xlsx). `V1_OPERATORS` is the ONNX table of its 1.4.0 page
(the last one printed as text) plus Sigmoid, which later 1.x releases convert (the EfficientNet-B SE blocks
and SiLU need it), and the shape-only operators the TorchScript exporter writes.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

V1_OPSET = 12  # the highest opset rknn-toolkit 1.7 reads
V1_IR_VERSION = 6  # onnx 1.6.0's IR version
V1_OPERATORS = frozenset(
    {
        *("AveragePool", "GlobalAveragePool", "MaxPool", "Conv", "ConvTranspose", "Gemm", "MatMul"),
        *("Slice", "Split", "Concat", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"),
        *("DepthToSpace", "SpaceToDepth", "Add", "Sum", "Sub", "Mul", "Div", "Relu", "Clip", "LeakyRelu"),
        *("Softmax", "PRelu", "Floor", "BatchNormalization", "LRN", "Sigmoid", "Constant", "Identity"),
    }
)


def rknn_v1_problems(path: str | os.PathLike) -> list[str]:
    """What keeps rknn-toolkit v1 from reading the ONNX file at ``path``: an opset above `V1_OPSET`, an IR
    version above `V1_IR_VERSION`, operators outside `V1_OPERATORS`, non-float32 tensors, a dynamic input
    shape. Empty when the file fits."""
    import onnx

    model = onnx.load(os.fspath(path))
    problems = []
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    if opsets.get("ai.onnx", 0) > V1_OPSET:
        problems.append(f"opset {opsets['ai.onnx']} (rknn-toolkit v1 reads up to {V1_OPSET})")
    other = sorted(domain for domain in opsets if domain != "ai.onnx")
    if other:
        problems.append(f"operator domains {other} (v1 reads the default ONNX domain only)")
    if model.ir_version > V1_IR_VERSION:
        problems.append(f"IR version {model.ir_version} (onnx 1.6.0 writes and reads {V1_IR_VERSION})")
    unknown = sorted({node.op_type for node in model.graph.node} - V1_OPERATORS)
    if unknown:
        problems.append(f"operators {unknown} are not in rknn-toolkit v1's ONNX list")
    for value in [*model.graph.input, *model.graph.output]:
        tensor = value.type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            problems.append(f"{value.name}: element type {tensor.elem_type}, expected float32")
        if any(not dim.HasField("dim_value") for dim in tensor.shape.dim):
            problems.append(f"{value.name}: a dynamic dimension (v1 needs a fixed shape)")
    return problems


def to_v1_opset(model) -> None:
    """Rewrite an effnet ONNX file (opset 18, the dynamo exporter's) in place as opset 12.

    Each ReduceMean over the height and width of an NCHW tensor (effnet's global pooling and SE squeeze)
    becomes GlobalAveragePool (+ Flatten when the dimensions are dropped): the same values, in an operator
    of rknn-toolkit v1's documented list, where ReduceMean is not. Reshape loses ``allowzero`` (opset 14;
    it only matters for a 0 in the target shape, which effnet's constant shapes do not have). The other
    operators effnet's models use (Conv, Clip, Add, Mul, Sigmoid, Gemm, BatchNormalization, Flatten) mean
    the same in opsets 12 to 18; ONNX Runtime then checks the file against the opset-12 schemas and
    PyTorch's outputs (`export_onnx_for_rknn_v1`)."""
    from onnx import helper, numpy_helper

    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for node in list(model.graph.node):
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Reshape" and "allowzero" in attributes:
            shape = constants.get(node.input[1])
            if attributes["allowzero"] and (shape is None or (shape == 0).any()):
                continue  # a 0 that would mean "zero" in opset 18: left as it is, ONNX Runtime then says so
            node.attribute.remove(next(a for a in node.attribute if a.name == "allowzero"))
        if node.op_type != "ReduceMean":
            continue
        axes = attributes.get("axes")
        if axes is None and len(node.input) > 1:
            axes = constants.get(node.input[1])
        if axes is None or sorted(int(axis) for axis in axes) not in ([2, 3], [-2, -1]):
            continue
        keep = attributes.get("keepdims", 1)
        pooled = node.output[0] if keep else f"{node.output[0]}_pooled"
        replacement = [helper.make_node("GlobalAveragePool", [node.input[0]], [pooled], name=node.name)]
        if not keep:
            replacement.append(
                helper.make_node("Flatten", [pooled], [node.output[0]], name=f"{node.name}_flatten", axis=1)
            )
        position = list(model.graph.node).index(node)
        model.graph.node.remove(node)
        for offset, new in enumerate(replacement):
            model.graph.node.insert(position + offset, new)
    used = {name for node in model.graph.node for name in node.input}
    for tensor in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(tensor)
    for node in [n for n in model.graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        model.graph.node.remove(node)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", V1_OPSET))
    model.ir_version = V1_IR_VERSION


def export_onnx_for_rknn_v1(model: nn.Module, path: str | os.PathLike) -> Path:
    """A float32 ONNX file of ``model`` (batch 1, fixed size) for rknn-toolkit v1: effnet's float ONNX
    export (`export_onnx`, checked against PyTorch) rewritten as opset 12 / IR version 6 (`to_v1_opset`),
    run by ONNX Runtime against PyTorch again and checked with `rknn_v1_problems`; a ValueError lists what
    does not fit (nothing is written then). The input is the normalized NCHW image: give rknn-toolkit v1 the
    model's mean and std in pixels (docs/rknn.md)."""
    import onnx

    from effnet.export.files import destination, publish, staging_folder
    from effnet.export.onnx import export_onnx
    from effnet.export.torch_model import export_copy, input_channels, random_inputs

    file = destination(path, ".onnx")
    network = export_copy(model)
    with staging_folder(file) as work:
        staged = export_onnx(network, work / file.name)
        proto = onnx.load(staged)
        to_v1_opset(proto)
        onnx.save(proto, staged)
        sample = random_inputs(network.preprocessing, input_channels(network), 2)[:1]
        _check_against_torch(staged, network, sample)
        problems = rknn_v1_problems(staged)
        if problems:
            name = getattr(network, "name", type(network).__name__)
            raise ValueError(
                f"{file}: {name} does not fit rknn-toolkit v1 (RV1126 / RV1109): {'; '.join(problems)}; "
                "nothing was written"
            )
        publish(staged, file)
    return file


def _check_against_torch(file: Path, network: nn.Module, sample) -> None:
    """The rewritten file computes what PyTorch does (ONNX Runtime, `FLOAT_TOLERANCE`), or an
    ExportCheckError."""
    import numpy as np
    import onnxruntime

    from effnet.export.checks import FLOAT_TOLERANCE, ExportCheckError
    from effnet.export.torch_model import reference_outputs

    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    output = session.run(None, {session.get_inputs()[0].name: sample})[0]
    reference = reference_outputs(network, sample)
    difference = float(np.abs(output - reference).max())
    tolerance = FLOAT_TOLERANCE * max(1.0, float(np.abs(reference).max()))
    if not difference <= tolerance:
        raise ExportCheckError(
            f"{file.name}: the rknn-toolkit v1 ONNX file differs from PyTorch by {difference:.3g} "
            f"(tolerance {tolerance:.3g}); nothing was written. This is a bug in effnet: please report it"
        )
