import os
import sys
from pathlib import Path

import pytest
import torch

from effnet.data.samples import write_digits_folder

# shared test helpers (reference fixtures) live in tests/fixtures
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))


def _own_cores(worker: str, workers: int) -> None:
    """Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores (worker i:
    every ``workers``-th core from the i-th) and PyTorch one thread: ONNX Runtime, LiteRT and the processes
    a test starts size their thread pools by the cores they may use, and two workers' pools on the same two
    cores spin against each other."""
    torch.set_num_threads(1)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if len(cores) >= workers > 1:
        index = int(worker.removeprefix("gw"))
        os.sched_setaffinity(0, set(cores[index % workers :: workers]))


if os.environ.get("PYTEST_XDIST_WORKER"):
    _own_cores(os.environ["PYTEST_XDIST_WORKER"], int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


# Code a conversion or quantization runs: a test that patches something of these must see its patch run, not
# a file `effnet.export.conversions` kept from before, and must leave no file made under its patch behind.
_EXPORT_CODE = ("effnet", "torch", "onnx", "onnxruntime", "onnxscript", "litert_torch", "ai_edge", "numpy")


def _module_of(target) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, type(sys)):
        return target.__name__
    return getattr(target, "__module__", None) or type(target).__module__


@pytest.fixture(scope="session", autouse=True)
def _shared_conversions(tmp_path_factory):
    """One conversion cache folder (`effnet.export.conversions`) for the whole run: both pytest-xdist
    workers and the effnet processes tests start convert a network once."""
    from effnet.export import conversions

    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "conversions"
    folder.mkdir(exist_ok=True)
    os.environ[conversions.FOLDER_VARIABLE] = str(folder)
    conversions.CONVERSIONS.folder = folder
    yield
    del os.environ[conversions.FOLDER_VARIABLE]
    conversions.CONVERSIONS.folder = None


@pytest.fixture
def monkeypatch(monkeypatch, _shared_conversions):
    """pytest's monkeypatch; while it patches export code (`_EXPORT_CODE`) the test has a conversion cache
    of its own: empty, and not shared with other tests or processes."""
    from effnet.export.conversions import CONVERSIONS

    shared = CONVERSIONS.folder

    def watching(method):
        def patch(target, *args, **kwargs):
            if CONVERSIONS.folder is not None and _module_of(target).split(".")[0].startswith(_EXPORT_CODE):
                CONVERSIONS.clear()
                CONVERSIONS.folder = None
            return method(target, *args, **kwargs)

        return patch

    monkeypatch.setattr(monkeypatch, "setattr", watching(monkeypatch.setattr))
    monkeypatch.setattr(monkeypatch, "delattr", watching(monkeypatch.delattr))
    yield monkeypatch
    if CONVERSIONS.folder is None:
        CONVERSIONS.clear()
        CONVERSIONS.folder = shared


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread: on a shared 2-core machine, two OpenMP threads wait on each other whenever
    another process holds a core, which made the export tests several times slower."""
    from effnet.image_classifier.training import single_thread

    with single_thread():
        yield


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory):
    """300 of scikit-learn's real handwritten digits as an image folder (10 classes)."""
    return write_digits_folder(tmp_path_factory.mktemp("digits"), limit=300)


@pytest.fixture(scope="session")
def segmentation_set(tmp_path_factory):
    """The generated segmentation set, small: 32 train and 12 test images of 96 px with exact masks."""
    from effnet.data.segmentation_set import write_segmentation_set

    return write_segmentation_set(tmp_path_factory.mktemp("segmentation") / "set", 32, 12, image_size=96)
