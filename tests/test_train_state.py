"""Step checkpoints are data: loading one never runs code, and the generators' states survive the trip."""

import random

import numpy as np
import pytest
import torch

from effnet.train_state import StepCheckpoints, rng_states, set_rng_states


class _WritesAFile:
    """What a crafted checkpoint holds: an object whose unpickling runs code (here: writes a file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_crafted_checkpoint_runs_no_code_and_names_the_file(tmp_path):
    marker = tmp_path / "ran.txt"
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    crafted = folder / "step-00000001.pt"
    torch.save({"fingerprint": {"model": "x"}, "payload": _WritesAFile(marker)}, crafted)
    with pytest.raises(ValueError) as error:
        StepCheckpoints(tmp_path / "run", {"model": "x"}).load_latest()
    assert not marker.exists()
    message = str(error.value)
    assert str(crafted) in message and "\n" not in message and "delete it" in message


def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "step-00000002.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"step-00000002\.pt: not a checkpoint effnet can read"):
        StepCheckpoints(tmp_path / "run", {}).load_latest()


def test_generator_states_round_trip_through_a_checkpoint(tmp_path):
    checkpoints = StepCheckpoints(tmp_path, {"model": "lite0", "seed": 3})
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    checkpoints.save(5, {"rng": rng_states(), "epoch": 1, "history": {"loss": [0.5]}})
    expected = (random.random(), np.random.rand(3), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    state = checkpoints.load_latest()
    set_rng_states(state["rng"])
    assert random.random() == expected[0]
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert torch.equal(torch.rand(3), expected[2])
    assert state["global_step"] == 5 and state["history"] == {"loss": [0.5]}


def test_an_older_runs_epoch_checkpoint_still_resumes(tmp_path):
    """effnet before one checkpoint format kept a frozen head's state in run/checkpoint.pt."""
    old = {"fingerprint": {"run": 1}, "epoch": 3, "module": {"weight": torch.ones(2)}, "history": {}}
    torch.save({**old, "optimizer": {}, "scheduler": {}}, tmp_path / "checkpoint.pt")
    state = StepCheckpoints(tmp_path, {"run": 1}, legacy=True).load_latest()
    assert (state["epoch"], state["step"]) == (4, 0)  # after epoch 3: epoch 4 from its first step
    assert torch.equal(state["model"]["weight"], torch.ones(2))
    assert StepCheckpoints(tmp_path, {"run": 1}).load_latest() is None  # only the head looks for it
