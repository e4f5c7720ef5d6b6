import pytest
import torch
import torch.nn.functional as F

import effnet
from effnet.models.layers import TFSameConv2d, create_conv2d, tf_same_padding


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 3, 2, (0, 1)),  # even input, stride 2: TF puts the extra pixel at the end
        (112, 5, 2, (1, 2)),
        (7, 3, 2, (1, 1)),  # odd input: symmetric
        (224, 3, 1, (1, 1)),
        (224, 5, 1, (2, 2)),
        (1, 3, 2, (1, 1)),
    ],
)
def test_tf_same_padding_amounts(size, kernel, stride, expected):
    assert tf_same_padding(size, kernel, stride) == expected


def test_same_conv_matches_hand_computed_case():
    """4x4 input, 3x3 kernel of ones, stride 2: TF SAME pads 0 top/left and 1 bottom/right."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    conv = create_conv2d(1, 1, 3, stride=2, padding="same")
    assert isinstance(conv, TFSameConv2d)
    torch.nn.init.ones_(conv.weight)
    # windows: rows/cols {0,1,2} and {2,3,pad}
    expected = torch.tensor([[45.0, 39.0], [66.0, 50.0]])
    assert torch.equal(conv(x)[0, 0], expected)
    symmetric = create_conv2d(1, 1, 3, stride=2, padding="symmetric")
    torch.nn.init.ones_(symmetric.weight)
    assert symmetric(x)[0, 0, 0, 0] == 0 + 1 + 4 + 5  # PyTorch pads 1 on every side


def test_same_model_matches_explicit_pad_reference():
    """Every strided conv in a 'same' model equals F.pad + an unpadded conv."""
    model = effnet.create_model("efficientnet_lite0", padding="same").eval()
    strided = [m for m in model.modules() if isinstance(m, TFSameConv2d)]
    assert len(strided) == 5  # stem + 4 stride-2 depthwise convs
    for size in (224, 75):
        x = torch.randn(1, strided[0].in_channels, size, size)
        conv = strided[0]
        before_h, after_h = tf_same_padding(size, 3, 2)
        reference = F.conv2d(F.pad(x, (before_h, after_h, before_h, after_h)), conv.weight, stride=2)
        assert torch.allclose(conv(x), reference, atol=1e-6)


def test_same_and_symmetric_share_weights_but_differ_on_even_inputs():
    same = effnet.create_model("mobilenet_v2_050", padding="same").eval()
    symmetric = effnet.create_model("mobilenet_v2_050").eval()
    symmetric.load_state_dict(same.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = same(x), symmetric(x)
    assert (a - b).norm() / a.norm() > 0.01  # a one-pixel shift at every strided layer


def test_bad_padding_name():
    with pytest.raises(ValueError, match="padding must be one of"):
        effnet.create_model("efficientnet_b0", padding="valid")


def test_same_padding_exports_static_onnx(tmp_path):
    """With a fixed input size the TF pads are constants: no Shape/Pad computation in the exported graph."""
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = effnet.create_model("mobilenet_v2_050", padding="same").eval()
    x = torch.randn(1, 3, 64, 64)
    program = torch.onnx.export(model, (x,), dynamo=True, external_data=False, optimize=True, verbose=False)
    proto = program.model_proto
    ops = {node.op_type for node in proto.graph.node}
    assert "Shape" not in ops and "Pad" not in ops
    onnx.checker.check_model(proto)
    session = ort.InferenceSession(proto.SerializeToString())
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert abs(out - model(x).numpy()).max() < 1e-4
