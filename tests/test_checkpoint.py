"""Atomic writes: files get the mode a plain open() would (0o666 less the umask, not mkstemp's 0o600);
JSON files are strict JSON."""

import json
import math
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from effnet.checkpoint import atomic_path, save_torch, write_json, write_text
from effnet.export.files import publish


@pytest.fixture(params=[0o022, 0o002])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_run_files_get_the_umask_mode(tmp_path, umask):
    write_json(tmp_path / "config.json", {"a": 1})
    write_text(tmp_path / "labels.txt", "cat\ndog\n")
    save_torch({"step": 1}, tmp_path / "checkpoint.pt")
    with atomic_path(tmp_path / "model.safetensors") as tmp:
        save_file({"w": torch.zeros(2)}, tmp)
    for name in ("config.json", "labels.txt", "checkpoint.pt", "model.safetensors"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "labels.txt",
        "model.safetensors",
    ]


def test_published_export_gets_the_umask_mode(tmp_path, umask):
    staged = tmp_path / "work" / "model.onnx"
    staged.parent.mkdir()
    staged.write_bytes(b"model")
    staged.chmod(0o600)  # as a converter writing through mkstemp leaves it
    publish(staged, tmp_path / "model.onnx")
    assert mode(tmp_path / "model.onnx") == 0o666 & ~umask


def test_json_files_are_strict_json_with_null_for_non_finite_numbers(tmp_path):
    write_json(tmp_path / "metrics.json", {"loss": math.nan, "curve": [1.0, math.inf, -math.inf], "n": 3})

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    text = (tmp_path / "metrics.json").read_text()
    assert json.loads(text, parse_constant=refuse) == {"loss": None, "curve": [1.0, None, None], "n": 3}
