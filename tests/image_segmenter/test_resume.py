"""A segmenter run stopped mid-epoch resumes to the weights of an uninterrupted run (the shared loop's exact
resume; the frozen backbone's feature cache is rebuilt on resume)."""

from __future__ import annotations

import pytest
import torch

from effnet import image_segmenter
from effnet.training import RunOptions


@pytest.mark.usefixtures("one_torch_thread")
def test_stopped_run_resumes_to_the_uninterrupted_weights(seg_data, tmp_path):
    train, _ = seg_data  # 32 images: 4 steps per epoch
    settings = {"input_size": 64, "epochs": 2, "batch_size": 8}
    whole = image_segmenter.create(train, model_dir=tmp_path / "whole", **settings)
    with pytest.raises(KeyboardInterrupt):
        image_segmenter.create(
            train, model_dir=tmp_path / "stopped", run_options=RunOptions(stop_after_step=5), **settings
        )
    assert not (tmp_path / "stopped" / "model.safetensors").exists()
    resumed = image_segmenter.create(train, model_dir=tmp_path / "stopped", **settings)
    assert [row["train_loss"] for row in resumed.history] == [row["train_loss"] for row in whole.history]
    ours, theirs = whole.network.state_dict(), resumed.network.state_dict()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
