import sys
from pathlib import Path

import pytest
import torch

# shared test helpers (reference fixtures) live in tests/fixtures
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """PyTorch on one thread: on a shared 2-core machine, two OpenMP threads wait on each other whenever
    another process holds a core, which made the export tests several times slower."""
    from effnet.image_classifier.training import single_thread

    with single_thread():
        yield
