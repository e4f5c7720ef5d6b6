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
