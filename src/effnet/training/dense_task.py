"""What `effnet.object_detector` and `effnet.image_segmenter` share around the training loop; each task brings
its network, its loss and metrics, and the few fields of its run folder that are its own.

- `DenseTaskModel`: the common half of `ObjectDetector` and `ImageSegmenter`: the network, its label names,
  settings and history; checking the data it is given, the parameter summary, `save` (the run folder:
  weights, labels, config.json, history) and `load_run` (reading that folder back, every damage reported as
  a ValueError naming the file);
- `check_training_data` and `train_dense_run`: the ``create()`` flow: argument checks, what identifies a run
  for resuming, and training under the folder's lock, the new head first on a frozen backbone when
  ``probe_epochs`` asks for it, then the run itself, saved into ``model_dir``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from torch import nn

from effnet.checkpoint import atomic_path, invalid_config, read_json, write_json, write_text
from effnet.distributed import is_main_process
from effnet.run_lock import run_lock
from effnet.training.checkpoints import StepCheckpoints
from effnet.training.control import sigterm_as_interrupt
from effnet.training.dense_hparams import DenseHParams
from effnet.training.history import History
from effnet.training.run_folder import (
    CONFIG_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    WEIGHTS_FILE,
    read_run_config,
)

Model = TypeVar("Model", bound="DenseTaskModel")
RUN_FILES = (WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE, HISTORY_FILE, "report.html")  # a finished run's files
# a task's training: (network, train_data, validation_data, hp, model_dir, fingerprint, options) -> History
TrainFunction = Callable[..., History]


class DenseTaskModel:
    """A trained dense-prediction model (a network with a ``backbone``, ``input_size`` and ``preprocessing``),
    its class names and how it was trained. A task's subclass names its run format, its data type and its
    settings class, and adds its own fields to the saved config (`_run_config`, `_rebuild`)."""

    FORMAT: ClassVar[str]  # config.json's "format", e.g. "effnet.object_detector/1"
    TASK: ClassVar[str]  # what the task's model is called in messages, e.g. "object detector"
    HPARAMS: ClassVar[type[DenseHParams]]
    DATA_TYPE: ClassVar[str]  # what data the task takes, and how to load it (for a wrong argument's error)
    DATA_LOADERS: ClassVar[str]
    LOAD_HINT: ClassVar[str] = ""  # appended to the error of a run folder of another format

    def __init__(
        self,
        network: nn.Module,
        label_names: Sequence[str],
        hparams: DenseHParams | None = None,
        history: list[dict] | None = None,
        best_epoch: int | None = None,
    ) -> None:
        self.network = network.eval()
        self.label_names = list(label_names)
        self.hparams = hparams or self.HPARAMS()
        self.history = history or []
        self.best_epoch = best_epoch
        self.train_data = None  # set by create(): calibration images for an int8 export

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def input_size(self) -> int:
        return self.network.input_size

    @property
    def preprocessing(self):
        return self.network.preprocessing

    @property
    def _model_name(self) -> str:
        return self.network.name

    # checking data -----------------------------------------------------------------------------------------
    @classmethod
    def data_type_error(cls, argument: str, data: Any) -> TypeError:
        """The error for ``argument`` given something other than the task's data."""
        return TypeError(
            f"{argument} must be an {cls.DATA_TYPE}, got {type(data).__name__}; "
            f"load one with {cls.DATA_LOADERS}"
        )

    def _check_data(self, data: Any) -> None:
        if not hasattr(data, "samples"):
            raise self.data_type_error("data", data)

    def _check_labels(self, data: Any) -> None:
        if not hasattr(data, "samples") or not hasattr(data, "label_names"):
            raise self.data_type_error("data", data)
        if list(data.label_names) != self.label_names:
            raise ValueError(
                f"the data's labels {list(data.label_names)[:5]} differ from the model's "
                f"{self.label_names[:5]}; evaluate on data with the same label map"
            )

    def summary(self, print_fn=print) -> None:
        """Print the network's parameter counts: total, trained (all but the backbone with a frozen backbone)
        and frozen."""
        total = sum(p.numel() for p in self.network.parameters())
        backbone = sum(p.numel() for p in self.network.backbone.parameters())
        trained = total if self.hparams.train_whole_model else total - backbone
        side = self.input_size
        print_fn(f'Model: "{self._model_name}", {self.num_classes} classes, input 3x{side}x{side}')
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trained:,}")
        print_fn(f"Non-trainable params: {total - trained:,}")

    # the run folder ----------------------------------------------------------------------------------------
    def _run_config(self) -> dict:
        """The task's own fields of config.json (what, beyond the common ones, rebuilds its network)."""
        return {}

    def save(self, directory: str | Path) -> Path:
        """Write the run folder: model.safetensors, config.json (how to rebuild the network), labels.txt and
        the training history."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format": self.FORMAT,
            "model_spec": self._model_name,
            **self._run_config(),
            # the conventions of the backbone's weights (TF-trained Lite: SAME padding, BN eps 1e-3), which a
            # network rebuilt without its pretrained weights would not have
            "padding": self.network.backbone.padding,
            "bn_eps": self.network.backbone.config.arch.bn_eps,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "labels": self.label_names,
            "preprocessing": self.preprocessing.to_dict(),
            "hparams": self.hparams.to_dict(),
            "best_epoch": self.best_epoch,
        }
        state = {k: v.detach().contiguous() for k, v in self.network.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            metadata = {"effnet": json.dumps({"format": self.FORMAT, "labels": self.label_names})}
            save_file(state, tmp, metadata=metadata)
        write_text(directory / LABELS_FILE, "\n".join(self.label_names) + "\n")
        write_json(directory / CONFIG_FILE, config)
        write_json(directory / HISTORY_FILE, {"best_epoch": self.best_epoch, "epochs": self.history})
        return directory

    @classmethod
    def _rebuild(cls, config: dict, labels: list[str]) -> tuple[nn.Module, dict]:
        """(the network config.json describes, with random weights; the task's other constructor
        arguments)."""
        raise NotImplementedError

    @classmethod
    def load_run(cls: type[Model], directory: str | Path) -> Model:
        """The model `save` wrote into ``directory``. A damaged folder (unreadable or inconsistent
        config.json, a truncated model.safetensors) raises ValueError naming the file; a missing file
        FileNotFoundError."""
        from effnet.preprocessing import Preprocessing
        from effnet.weights.load import load_run_weights

        directory = Path(directory)
        config_path, config = read_run_config(directory, cls.FORMAT, cls.TASK, cls.TASK, cls.LOAD_HINT)
        try:
            labels = [str(label) for label in config["labels"]]
            if len(labels) != config["num_classes"]:
                raise ValueError(f"{len(labels)} labels for num_classes {config['num_classes']}")
            network, arguments = cls._rebuild(config, labels)
            network.preprocessing = Preprocessing.from_dict(config["preprocessing"])
            hparams = cls.HPARAMS.from_dict(config["hparams"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise invalid_config(config_path, error) from None
        load_run_weights(network, directory / WEIGHTS_FILE, config_path)
        history_path = directory / HISTORY_FILE
        history = read_json(history_path).get("epochs", []) if history_path.is_file() else []
        return cls(
            network.eval(),
            labels,
            hparams=hparams,
            history=history,
            best_epoch=config.get("best_epoch"),
            **arguments,
        )


def content_id(samples: Iterable[Any], sample_identity: Callable[[Any], Iterable[bytes]]) -> str:
    """A short digest of the ``sample_identity`` bytes of every sample, in order: which data a run trains on,
    stable across processes (a resumed run must recognize its checkpoint)."""
    digest = hashlib.sha256()
    for sample in samples:
        for part in sample_identity(sample):
            digest.update(part)
    return digest.hexdigest()[:16]


def check_training_data(
    train_data: Any, validation_data: Any, data_type_error: Callable[[str, Any], TypeError], empty_hint: str
) -> None:
    """The checks of ``create()``'s data: both of the task's type, with the same labels, and images to train
    on (``empty_hint``: where to look when there are none)."""
    for argument, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None and not (hasattr(data, "samples") and hasattr(data, "label_names")):
            raise data_type_error(argument, data)
    if validation_data is not None and list(validation_data.label_names) != list(train_data.label_names):
        raise ValueError("validation_data has other labels than train_data; split one DataLoader instead")
    if len(train_data) == 0:
        raise ValueError(f"train_data holds no images; {empty_hint}")


def train_dense_run(
    model: Model,
    validation_data: Any,
    model_dir: str | Path | None,
    run_options: Any,
    train: TrainFunction,
    identity: dict,
    sample_identity: Callable[[Any], Iterable[bytes]],
) -> Model:
    """Train ``model`` (as ``create()`` built it: its network, settings and ``train_data``) with the task's
    ``train``; return it holding the kept weights and the history, saved into ``model_dir``.

    ``identity`` (task, model, pretrained) with the labels, the training data (its size and a digest of each
    sample's ``sample_identity``: bytes that are stable across processes), the validation size and the
    settings make the run's fingerprint: `create` called again with the same ``model_dir`` and settings
    resumes from its step checkpoints. When fine-tuning with ``probe_epochs``, the new head first trains that
    many epochs on a frozen backbone (a resumed run's checkpoint already holds their result)."""
    network, train_data, hp = model.network, model.train_data, model.hparams
    if len(train_data) < hp.batch_size:
        raise ValueError(
            f"train_data has {len(train_data)} images, fewer than batch_size={hp.batch_size}; pass a smaller "
            "batch_size"
        )
    model_dir = Path(model_dir) if model_dir is not None else None
    fingerprint = {
        **identity,
        "labels": list(train_data.label_names),
        "train": [len(train_data), content_id(train_data.samples, sample_identity)],
        "validation": len(validation_data) if validation_data is not None else 0,
        "hparams": hp.to_dict(),
    }
    with run_lock(model_dir if is_main_process() else None), sigterm_as_interrupt():
        resuming = StepCheckpoints(model_dir, fingerprint).exists()
        if hp.train_whole_model and hp.probe_epochs and not resuming:
            probe = replace(hp, train_whole_model=False, epochs=hp.probe_epochs)
            train(network, train_data, None, probe, None, fingerprint, run_options)
            for parameter in network.parameters():
                parameter.requires_grad_(True)
        history = train(network, train_data, validation_data, hp, model_dir, fingerprint, run_options)
        model.history, model.best_epoch = history.epochs, history.best_epoch
        if model_dir is not None and is_main_process():
            model.save(model_dir)
    return model
