"""The per-process cache of converted files: one conversion per network and file format, never a stale
file for a network that changed."""

import copy

import pytest
import torch

import effnet
from effnet.export.conversions import ConversionCache, fingerprint


def tiny():
    torch.manual_seed(0)
    model = effnet.create_model("mobilenet_v3_small_100", num_classes=3, input_size=32)
    return model.eval()


def test_the_fingerprint_follows_weights_buffers_settings_and_input():
    model = tiny()
    first = fingerprint(model, (1, 3, 32, 32))
    assert first == fingerprint(tiny(), (1, 3, 32, 32))  # the same network built again
    assert first != fingerprint(model, (1, 3, 64, 64))
    with torch.no_grad():
        next(model.parameters())[0, 0, 0, 0] += 1e-6
    assert fingerprint(model, (1, 3, 32, 32)) != first
    model = tiny()
    next(b for n, b in model.named_buffers() if n.endswith("running_var")).mul_(2)
    assert fingerprint(model, (1, 3, 32, 32)) != first
    model = tiny()
    model.train()
    assert fingerprint(model, (1, 3, 32, 32)) != first
    model = tiny()
    model.classifier.some_setting = 0.5  # a plain attribute a forward may read
    assert fingerprint(model, (1, 3, 32, 32)) != first


def test_the_graph_fingerprint_follows_everything_but_the_values_of_nonzero_weights():
    model, graph = tiny(), fingerprint(tiny(), "onnx", weights=False)
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
        assert fingerprint(model, "onnx", weights=False) == graph != fingerprint(model, "onnx")
        bias = model.classifier.bias
        bias.fill_(0.0 if bias.any() else 0.1)  # an all-zero bias, which exporters leave out, or not
    assert fingerprint(model, "onnx", weights=False) != graph
    assert fingerprint(tiny(), "tflite", weights=False) != graph


def test_no_fingerprint_for_what_it_cannot_cover():
    model = tiny()
    model.register_forward_hook(lambda module, inputs, output: output * 2)
    assert fingerprint(model) is None
    model = tiny()
    model.classifier.callback = object()
    assert fingerprint(model) is None


def test_the_cache_converts_once_and_copies_after(tmp_path):
    cache, calls = ConversionCache(max_files=2), []

    def convert(network, file):
        calls.append(file.name)
        file.write_bytes(b"converted " + str(len(calls)).encode())

    model = tiny()
    cache.convert(model, tmp_path / "a", convert, "tflite")
    cache.convert(model, tmp_path / "b", convert, "tflite")
    assert calls == ["a"] and (tmp_path / "b").read_bytes() == b"converted 1"
    cache.convert(model, tmp_path / "c", convert, "onnx")  # other settings: converted
    assert calls == ["a", "c"]
    cache.convert(model, tmp_path / "d", convert, "other")  # a third entry drops the least recently used
    cache.convert(model, tmp_path / "e", convert, "tflite")
    assert calls == ["a", "c", "d", "e"]


def test_processes_sharing_a_folder_convert_once(tmp_path):
    """Two caches on one folder (two processes of a job): what one converted, the other copies, even after
    it forgot it in memory; a conversion that failed leaves nothing in the folder."""
    folder, calls = tmp_path / "shared", []

    def convert(network, file):
        calls.append(file.name)
        file.write_bytes(b"converted")

    first, second = ConversionCache(folder=folder), ConversionCache(folder=folder)
    first.convert(tiny(), tmp_path / "a", convert, "onnx")
    second.convert(tiny(), tmp_path / "b", convert, "onnx")
    second.clear()
    second.convert(tiny(), tmp_path / "c", convert, "onnx")
    assert calls == ["a"] and (tmp_path / "c").read_bytes() == b"converted"
    assert [path.name for path in folder.iterdir()] == [fingerprint(tiny(), "onnx")]

    def fail(network, file):
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        first.convert(tiny(), tmp_path / "d", fail, "tflite")
    assert len(list(folder.iterdir())) == 1


def test_a_failed_conversion_is_not_kept(tmp_path):
    cache = ConversionCache()

    def fail(network, file):
        file.write_bytes(b"half")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError):
        cache.convert(tiny(), tmp_path / "a", fail)
    calls = []
    cache.convert(tiny(), tmp_path / "b", lambda network, file: calls.append(file.write_bytes(b"ok")))
    assert calls and (tmp_path / "b").read_bytes() == b"ok"


def test_exporting_one_model_to_several_onnx_files_converts_it_once(small_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxscript")
    from effnet.export import export_onnx
    from effnet.export.conversions import CONVERSIONS

    CONVERSIONS.clear()
    calls = []
    original = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(1) or original(*a, **k))
    float_file = export_onnx(small_model, tmp_path / "float.onnx")
    fp16_file = export_onnx(small_model, tmp_path / "fp16.onnx", "fp16")
    assert len(calls) == 1
    assert float_file.check.top1_agreement == 1.0 and fp16_file.check.top1_agreement >= 0.95
    changed = copy.deepcopy(small_model)
    with torch.no_grad():
        changed.classifier.bias[0] += 1.0  # a changed model is converted again
    export_onnx(changed, tmp_path / "changed.onnx")
    assert len(calls) == 2


def test_a_network_of_the_same_graph_gets_the_kept_onnx_file_with_its_own_weights(
    small_model, tmp_path, monkeypatch
):
    """GPTQ-rounded and fine-tuned copies, other training runs: the ONNX file converted for one network is
    given the other's weights (BatchNorms folded as the exporter folds them) instead of converting again."""
    pytest.importorskip("onnxscript")
    from effnet import runtime
    from effnet.export import export_onnx
    from effnet.export.conversions import CONVERSIONS

    CONVERSIONS.clear()
    calls = []
    original = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(1) or original(*a, **k))
    export_onnx(small_model, tmp_path / "first.onnx")
    other = copy.deepcopy(small_model)
    with torch.no_grad():
        for tensor in other.state_dict().values():
            if tensor.is_floating_point() and tensor.any():  # every weight and BatchNorm statistic
                tensor.mul_(1 + 0.05 * torch.rand_like(tensor))
    written = export_onnx(other, tmp_path / "other.onnx")
    assert len(calls) == 1
    images = torch.randn(8, 3, 96, 96)
    with torch.no_grad():
        expected = other(images).numpy()
    computed = runtime.load(written).predict_batch(images.numpy())
    assert abs(computed - expected).max() < 1e-4 * abs(expected).max()
    assert (
        abs(computed - small_model(images).detach().numpy()).max() > 0.01
    )  # its own weights, not the first's


def test_a_kept_onnx_file_that_computes_something_else_is_not_reused(small_model, tmp_path):
    """The same parameters in another computation (here one activation less): given the network's weights,
    the kept file does not compute the network's outputs, so it is not used."""
    pytest.importorskip("onnxscript")
    from effnet.export.onnx import _reweighted, torch_to_onnx

    sample = torch.randn(1, 3, 96, 96)
    torch_to_onnx(small_model, tmp_path / "network.onnx", sample, 18, ["logits"])
    kept = (tmp_path / "network.onnx").read_bytes()
    assert _reweighted(kept, small_model, sample) is not None
    other = copy.deepcopy(small_model)
    parent = next(
        module for module in other.modules() if isinstance(getattr(module, "act", None), torch.nn.ReLU6)
    )
    parent.act = torch.nn.Identity()
    assert _reweighted(kept, other, sample) is None
