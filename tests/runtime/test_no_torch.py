"""The runtime runs exported files with numpy, Pillow and the engine: no torch."""

import subprocess
import sys
from pathlib import Path

import effnet.runtime

PACKAGE = str(Path(effnet.runtime.__file__).parents[1])

BLOCK_TORCH = """
import sys, types

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")

sys.meta_path.insert(0, BlockTorch())
"""

PREDICT = """
import numpy as np
from effnet import runtime

for path in {paths!r}:
    predictions = runtime.load(path).predict(np.full((80, 90, 3), 128, np.uint8), top_k=2)
    assert len(predictions[0]) == 2, predictions
assert "torch" not in sys.modules
print("ok")
"""


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def exported_files(request):
    paths = [str(request.getfixturevalue("onnx_file"))]
    try:
        import litert_torch  # noqa: F401
    except ImportError:
        return paths
    return [*paths, str(request.getfixturevalue("tflite_file"))]


def test_runtime_modules_never_import_torch(request):
    # effnet/__init__.py (the model API) imports torch; stand in an empty `effnet` package so that only the
    # runtime's own imports are tested.
    stub_package = (
        f"pkg = types.ModuleType('effnet'); pkg.__path__ = [{PACKAGE!r}]; sys.modules['effnet'] = pkg\n"
    )
    result = run(BLOCK_TORCH + stub_package + PREDICT.format(paths=exported_files(request)))
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_import_effnet_runtime_without_torch(request):
    result = run(BLOCK_TORCH + PREDICT.format(paths=exported_files(request)))
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
