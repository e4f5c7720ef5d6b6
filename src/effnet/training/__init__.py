"""One training loop for every task: a task brings its model, data, batch -> loss and validation as a
`TrainingTask`; `train` runs it on one process or many, with precision, gradient accumulation, step
checkpoints, exact resume, stop signals, progress and the history of epochs.

    from effnet.training import RunOptions, StepOutput, TrainingTask, train

    def step(runner, images, labels, global_step):
        logits = runner(images)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        return StepOutput(loss, ((logits.argmax(1) == labels).sum().item(),))

    history = train(TrainingTask(model, data, step, make_optimizer, transform, validate, epochs=3,
                                 batch_size=32), model_dir, fingerprint, RunOptions(accumulate=2))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "FOLDER": "effnet.training.checkpoints",
    "StepCheckpoints": "effnet.training.checkpoints",
    "plain_state": "effnet.training.checkpoints",
    "resume_training": "effnet.training.checkpoints",
    "sigterm_as_interrupt": "effnet.training.control",
    "single_thread": "effnet.training.control",
    "History": "effnet.training.history",
    "StepOutput": "effnet.training.loop",
    "TrainingTask": "effnet.training.loop",
    "freeze_batchnorm": "effnet.training.loop",
    "train": "effnet.training.loop",
    "PRECISIONS": "effnet.training.options",
    "Precision": "effnet.training.options",
    "RunOptions": "effnet.training.options",
    "epoch_seed": "effnet.training.schedule",
    "make_optimizer": "effnet.training.schedule",
    "warmup_cosine": "effnet.training.schedule",
}

__all__ = [
    "FOLDER",
    "PRECISIONS",
    "History",
    "Precision",
    "RunOptions",
    "StepCheckpoints",
    "StepOutput",
    "TrainingTask",
    "epoch_seed",
    "freeze_batchnorm",
    "make_optimizer",
    "plain_state",
    "resume_training",
    "sigterm_as_interrupt",
    "single_thread",
    "train",
    "warmup_cosine",
]

if TYPE_CHECKING:
    from effnet.training.checkpoints import FOLDER, StepCheckpoints, plain_state, resume_training
    from effnet.training.control import sigterm_as_interrupt, single_thread
    from effnet.training.history import History
    from effnet.training.loop import StepOutput, TrainingTask, freeze_batchnorm, train
    from effnet.training.options import PRECISIONS, Precision, RunOptions
    from effnet.training.schedule import epoch_seed, make_optimizer, warmup_cosine

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
