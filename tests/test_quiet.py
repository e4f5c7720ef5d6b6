"""effnet's output is effnet's: the engines' progress bars, warnings and C++ logs stay hidden in export."""

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from effnet.quiet import VERBOSE_VARIABLE, native_stderr_captured, quiet_third_party


def run_as(module_name, code, **names):
    """Run ``code`` as if in module ``module_name`` (warnings and tqdm look at the caller's module)."""
    scope = {"__name__": module_name, **names}
    exec(code, scope)
    return scope


# (not closed: close() sets disable)
NEW_BAR = "import io, tqdm\nbar = tqdm.tqdm(total=3, file=io.StringIO())"


def test_bars_from_other_packages_are_disabled_and_effnet_bars_kept(monkeypatch):
    monkeypatch.delenv(VERBOSE_VARIABLE, raising=False)
    with quiet_third_party():
        assert run_as("ai_edge_quantizer.utils.progress_utils", NEW_BAR)["bar"].disable
        assert not run_as("effnet.export.rounding", NEW_BAR)["bar"].disable
    assert not run_as("ai_edge_quantizer.utils.progress_utils", NEW_BAR)["bar"].disable


def test_warnings_from_engines_are_ignored_and_others_kept(monkeypatch):
    monkeypatch.delenv(VERBOSE_VARIABLE, raising=False)
    warn = "import warnings\nwarnings.warn(message, category)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_third_party():
            run_as("copyreg", warn, message="LeafSpec is deprecated", category=FutureWarning)
            run_as("ai_edge_quantizer.algorithms.x", warn, message="invalid value", category=RuntimeWarning)
            run_as("effnet.export.checks", warn, message="effnet's own", category=UserWarning)
    assert [str(w.message) for w in caught] == ["effnet's own"]


def test_native_stderr_is_captured_and_replayed_on_failure(monkeypatch, capfd):
    monkeypatch.delenv(VERBOSE_VARIABLE, raising=False)
    with native_stderr_captured():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError), native_stderr_captured():
        os.write(2, b"F0000 why it failed\n")
        raise RuntimeError("conversion failed")
    assert "why it failed" in capfd.readouterr().err


def test_verbose_shows_everything(monkeypatch, capfd):
    monkeypatch.setenv(VERBOSE_VARIABLE, "1")
    with quiet_third_party(), native_stderr_captured():
        assert not run_as("ai_edge_quantizer.utils.progress_utils", NEW_BAR)["bar"].disable
        os.write(2, b"I0000 shown\n")
    assert "I0000 shown" in capfd.readouterr().err


EXPORTS = """
import numpy as np, torch
import effnet
from effnet.export import QuantizationConfig, export_onnx, export_tflite

torch.set_num_threads(1)
model = effnet.create_model("mobilenet_v1_025", num_classes=3, input_size=32).eval()
images = np.random.default_rng(0).uniform(-1, 1, (8, 3, 32, 32)).astype(np.float32)
config = QuantizationConfig("int8", images, quantization_steps=8)
export_tflite(model, {folder!r} + "/model.tflite", quantization=config)
export_onnx(model, {folder!r} + "/model.onnx", quantize=config)
print("exported")
"""
# what the engines printed before: ai-edge-quantizer's calibration bar, Python warnings ("...Warning: ..."),
# C++ logs ("I0000 ...", "INFO: Created TensorFlow Lite XNNPACK delegate"), torch's and torchao's loggers
THIRD_PARTY = (
    "Running Calibration",
    "Warning",
    "I0000",
    "INFO:",
    "W1",
    "absl",
    "Failed to load",
    "torchvision",
)


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("litert_torch", "ai_edge_quantizer", "onnxruntime")),
    reason='needs the litert and onnx extras: pip install "effnet[litert,onnx]"',
)
def test_int8_exports_print_no_third_party_output(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != VERBOSE_VARIABLE}
    environment["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])
    result = subprocess.run(
        [sys.executable, "-c", EXPORTS.format(folder=str(tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "exported" in result.stdout
    assert [line for line in output.splitlines() if any(marker in line for marker in THIRD_PARTY)] == []
