"""A detector run stopped mid-epoch resumes to the weights of an uninterrupted run (the shared loop's exact
resume, with the frozen backbone's feature cache rebuilt on resume)."""

from __future__ import annotations

import pytest
import torch

from effnet import object_detector
from effnet.training import RunOptions


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_stopped_run_resumes_to_the_uninterrupted_weights(detection_parts, tmp_path):
    train, _ = detection_parts
    subset, _ = train.split(0.5, seed=0)  # 24 images: 3 steps per epoch
    settings = {"model_spec": "ssdlite_mobilenet_v2", "input_size": 96, "epochs": 2, "batch_size": 8}
    whole = object_detector.create(subset, model_dir=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        object_detector.create(
            subset, model_dir=tmp_path / "stopped", run_options=RunOptions(stop_after_step=4), **settings
        )
    assert not (tmp_path / "stopped" / "model.safetensors").exists()
    resumed = object_detector.create(subset, model_dir=tmp_path / "stopped", **settings)
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in whole.history]
    ours, theirs = whole.network.state_dict(), resumed.network.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
