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


def pool_spatial_means(model) -> int:
    """Rewrite each ReduceMean over the height and width of an NCHW tensor (effnet's global pooling and SE
    squeeze, ``x.mean((2, 3))``) as GlobalAveragePool (+ Flatten when the dimensions are dropped): the same
    values, in an operator of rknn-toolkit v1's documented list, where ReduceMean is not. Returns how many
    were rewritten; ``model`` (an opset <= 17 ONNX model: axes as an attribute) is edited in place."""
    from onnx import helper

    rewritten = 0
    for node in list(model.graph.node):
        if node.op_type != "ReduceMean":
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if sorted(attributes.get("axes", [])) not in ([2, 3], [-2, -1]):
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
        rewritten += 1
    return rewritten


def export_onnx_for_rknn_v1(model: nn.Module, path: str | os.PathLike) -> Path:
    """A float32 ONNX file of ``model`` (batch 1, fixed size) for rknn-toolkit v1: TorchScript-exported at
    opset 12 and stamped IR version 6, then checked with `rknn_v1_problems`; a ValueError lists what does not
    fit (nothing is written then). The input is the normalized NCHW image: give rknn-toolkit v1 the model's
    mean and std in pixels (docs/rknn.md)."""
    import onnx
    import torch

    from effnet.export.files import destination, publish, staging_folder
    from effnet.export.torch_model import export_copy, input_channels, random_inputs
    from effnet.quiet import quiet_third_party

    file = destination(path, ".onnx")
    network = export_copy(model)
    sample = torch.from_numpy(random_inputs(network.preprocessing, input_channels(network), 1))
    with staging_folder(file) as work:
        staged = work / file.name
        with quiet_third_party():
            torch.onnx.export(
                network,
                (sample,),
                staged,
                dynamo=False,  # the dynamo exporter writes opset 18 and up
                opset_version=V1_OPSET,
                input_names=["input"],
                output_names=["output"],
                do_constant_folding=True,
            )
        proto = onnx.load(staged)
        pool_spatial_means(proto)
        proto.ir_version = V1_IR_VERSION
        onnx.save(proto, staged)
        _check_against_torch(staged, network, sample.numpy())
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
    output = session.run(None, {"input": sample})[0]
    reference = reference_outputs(network, sample)
    difference = float(np.abs(output - reference).max())
    tolerance = FLOAT_TOLERANCE * max(1.0, float(np.abs(reference).max()))
    if not difference <= tolerance:
        raise ExportCheckError(
            f"{file.name}: the rknn-toolkit v1 ONNX file differs from PyTorch by {difference:.3g} "
            f"(tolerance {tolerance:.3g}); nothing was written. This is a bug in effnet: please report it"
        )
