import os
import sys
from pathlib import Path

import pytest
import torch

from effnet.data.samples import write_digits_folder

# shared test helpers (reference fixtures) live in tests/fixtures
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

# Under pytest-xdist (`make test` runs two workers) each worker keeps PyTorch to one thread: two workers of
# two OpenMP threads each on two cores wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic(request):
    torch.manual_seed(0)
    conversions = sys.modules.get("effnet.export.conversions")
    if conversions is not None and "monkeypatch" in request.fixturenames:
        # a test that patches the export's internals must see them run, not a conversion kept from before
        conversions.CONVERSIONS.clear()
    yield


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
