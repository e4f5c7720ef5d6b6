"""The loop on a task that is neither classifier nor embedder (a tiny regression with no accuracy): what a
detector or segmenter would bring is enough, and a run stopped after step N resumes bitwise."""

import pytest
import torch
from torch import nn

from effnet.data import EvalTransform, ImageDataset
from effnet.data.samples import write_digits_folder
from effnet.preprocessing import Preprocessing
from effnet.training import RunOptions, StepOutput, TrainingTask, train

TRANSFORM = EvalTransform(Preprocessing(input_size=(8, 8)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ImageDataset.from_folder(write_digits_folder(tmp_path_factory.mktemp("digits"), limit=20))


def regression(data, steps_taken: list | None = None) -> TrainingTask:
    """Predict the digit's value: a squared error, no metric counts, no validation. ``steps_taken`` collects
    the global step of each micro-batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1))
    model.extend([nn.Flatten(), nn.Linear(4, 1)])

    def step(runner, images, labels, global_step):
        if steps_taken is not None:
            steps_taken.append(global_step)
        return StepOutput(((runner(images).squeeze(1) - labels.float()) ** 2).sum())

    def optimizer(steps_per_epoch):
        made = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
        return made, torch.optim.lr_scheduler.LambdaLR(made, lambda step: 1.0)

    return TrainingTask(
        model, data, step, optimizer, lambda epoch: TRANSFORM, lambda runner, context, precision: {},
        epochs=2, batch_size=4, num_workers=0, metrics=(),
    )  # fmt: skip


def test_a_run_stopped_after_step_n_resumes_to_the_same_weights(data, tmp_path):
    full = regression(data)
    history = train(full, tmp_path / "full", {"run": 1})
    assert [sorted(row) for row in history.epochs] == [["epoch", "lr", "seconds", "train_loss"]] * 2
    cut = regression(data)
    with pytest.raises(KeyboardInterrupt):  # 5 steps per epoch: stops in epoch 2, as SIGTERM would
        train(cut, tmp_path / "cut", {"run": 1}, RunOptions(stop_after_step=7))
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())[-1] == "step-00000007.pt"
    steps_taken = []
    resumed = regression(data, steps_taken)
    assert [row["epoch"] for row in train(resumed, tmp_path / "cut", {"run": 1}).epochs] == [1, 2]
    assert steps_taken == [7, 8, 9]  # 0-based: the run went on after its 7th step
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_a_diverging_loss_names_the_task_s_fix(data):
    task = regression(data)
    task.step = lambda runner, images, labels, step: StepOutput(runner(images).sum() * float("inf"))
    task.divergence_hint = "lower the learning rate (now 0.001)"
    with pytest.raises(FloatingPointError, match=r"became (nan|inf) in epoch 1; lower the learning rate"):
        train(task, None, {})
