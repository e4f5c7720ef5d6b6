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
