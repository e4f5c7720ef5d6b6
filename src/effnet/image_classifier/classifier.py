"""`image_classifier.create` and the trained `ImageClassifier`: evaluate, predict, save, load, export."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.checkpoint import (
    atomic_path,
    invalid_config,
    read_json,
    write_json,
    write_text,
)
from effnet.data import EvalTransform, ImageDataset
from effnet.distributed import is_main_process
from effnet.factory import create_model
from effnet.image_classifier.fine_tuning import fine_tune
from effnet.image_classifier.hparams import HParams
from effnet.image_classifier.metrics import detailed_metrics
from effnet.image_classifier.model_spec import ModelSpec, hub_not_used
from effnet.image_classifier.model_spec import get as get_spec
from effnet.image_classifier.training import (
    evaluate_network,
    extract_features,
    predict_logits,
    train_linear_head,
)
from effnet.models import EfficientNet
from effnet.models.spec import config_from_dict, config_to_dict
from effnet.run_lock import run_lock
from effnet.training.checkpoints import StepCheckpoints
from effnet.training.control import sigterm_as_interrupt, single_thread
from effnet.training.run_folder import (
    CONFIG_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    WEIGHTS_FILE,
    read_run_config,
)
from effnet.training.schedule import epoch_seed
from effnet.weights.load import METADATA_KEY, load_run_weights

log = logging.getLogger(__name__)
FORMAT = "effnet.image_classifier/1"


class ImageClassifier:
    """A trained classifier: the network, its class names and how it was trained."""

    def __init__(
        self,
        network: EfficientNet,
        index_to_label: Sequence[str],
        model_spec: ModelSpec,
        hparams: HParams | None = None,
        history: list[dict] | None = None,
        best_epoch: int | None = None,
    ) -> None:
        self.network = network.eval()
        self.index_to_label = list(index_to_label)
        self.model_spec = model_spec
        self.hparams = hparams or HParams()
        self.history = history or []
        self.best_epoch = best_epoch
        self.train_data: ImageDataset | None = None  # set by create(): calibration data for int8 export
        network.labels = self.index_to_label

    @property
    def num_classes(self) -> int:
        return len(self.index_to_label)

    @property
    def preprocessing(self):
        return self.network.preprocessing

    def __repr__(self) -> str:
        name, best = self.model_spec.name, self.best_epoch
        return f"ImageClassifier({name}, {self.num_classes} classes, best epoch {best})"

    def summary(self, depth: int = 2, print_fn: Callable[[str], Any] = print) -> None:
        """Print the network as Keras' ``model.summary()`` does: one row per stage (``depth=2``; 3: per block,
        see `effnet.profiling.Profile.grouped`) with its output shape, parameters and MACs at the input size,
        then the total, trainable and non-trainable parameters (with a frozen backbone only the classifier
        head is trained)."""
        from effnet.profiling import count_params, profile

        counted = profile(self.network)
        height, width = counted.input_size
        trained = self.network if self.hparams.train_whole_model else self.network.classifier
        trainable = count_params(trained)
        print_fn(f'Model: "{self.model_spec.name}", {self.num_classes} classes, input 3x{height}x{width}')
        print_fn(counted.table(depth))
        print_fn(f"Total params: {counted.params:,}")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {counted.params - trainable:,}")

    # evaluation ---------------------------------------------------------------------------------------------
    def evaluate(self, data: ImageDataset, batch_size: int = 32, detailed: bool = False, top_k: int = 5):
        """(loss, accuracy) on ``data``; with ``detailed=True`` a dict that adds top-k accuracy, per-class
        precision / recall / F1 and the confusion matrix."""
        self._check_labels(data)
        if not detailed:
            return evaluate_network(self.network, data, batch_size, self.hparams.num_workers)
        logits, labels = predict_logits(self.network, data, batch_size, self.hparams.num_workers)
        return detailed_metrics(logits, labels, self.index_to_label, top_k=top_k)

    def predict_top_k(
        self, data: ImageDataset | Sequence, k: int = 1, batch_size: int = 32
    ) -> list[list[tuple]]:
        """For each image, the ``k`` most likely (label, probability) pairs. ``data`` is a dataset, or a list
        of image paths / PIL images / arrays (decoded in threads, a batch ahead of the model: see
        `effnet.data.inference.probability_batches`); an image of the list that cannot be decoded is a
        ValueError naming it."""
        if isinstance(data, ImageDataset):
            logits, _ = predict_logits(self.network, data, batch_size, self.hparams.num_workers)
            probabilities = logits.softmax(1)
        else:
            from effnet.data.inference import probability_batches

            rows = []
            for batch, batch_probabilities in probability_batches(self.network, list(data), batch_size):
                if batch.failures:
                    position, error = batch.failures[0]
                    raise ValueError(f"predict_top_k: image {position} of the list: {error}")
                rows.append(batch_probabilities)
            probabilities = torch.cat(rows) if rows else torch.zeros(0, self.num_classes)
        values, indexes = probabilities.topk(min(k, self.num_classes), dim=1)
        return [
            [(self.index_to_label[i], float(p)) for p, i in zip(row_p, row_i, strict=True)]
            for row_p, row_i in zip(values.tolist(), indexes.tolist(), strict=True)
        ]

    def _check_labels(self, data: ImageDataset) -> None:
        if list(data.index_to_label) != self.index_to_label:
            raise ValueError(
                f"the data's classes {data.index_to_label[:5]}... differ from the model's "
                f"{self.index_to_label[:5]}...; evaluate on a folder with the same class sub-folders"
            )

    # saving -------------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write everything needed to load the model again: weights (safetensors, with the model config in
        its metadata), labels.txt, config.json and the training history."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "model_spec": self.model_spec.name,
            "model_config": config_to_dict(self.network.config),
            "num_classes": self.num_classes,
            "labels": self.index_to_label,
            "padding": self.network.padding,
            "bn_eps": _bn_eps(self.network),
            "dropout_rate": self.network.drop_rate,
            "preprocessing": self.preprocessing.to_dict(),
            "hparams": self.hparams.to_dict(),
            "best_epoch": self.best_epoch,
        }
        metadata = {
            METADATA_KEY: json.dumps({k: config[k] for k in ("padding", "bn_eps", "preprocessing", "labels")})
        }
        state = {k: v.detach().contiguous() for k, v in self.network.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(state, tmp, metadata=metadata)
        write_text(directory / LABELS_FILE, "\n".join(self.index_to_label) + "\n")
        write_json(directory / CONFIG_FILE, config)
        write_json(directory / HISTORY_FILE, {"best_epoch": self.best_epoch, "epochs": self.history})
        return directory

    def export(self, *args, **kwargs):
        from effnet.image_classifier.exporting import export_classifier

        return export_classifier(self, *args, **kwargs)

    def evaluate_tflite(self, tflite_filepath: str | Path, data: ImageDataset, postprocess_fn=None) -> dict:
        """Accuracy of an exported file (.tflite or .onnx) on ``data``: ``{"accuracy": ...}``."""
        from effnet.runtime import load as load_runtime

        self._check_labels(data)
        return load_runtime(tflite_filepath).evaluate(data)


def _bn_eps(network: nn.Module) -> float:
    return next((m.eps for m in network.modules() if isinstance(m, nn.BatchNorm2d)), 1e-3)


def load(directory: str | Path) -> ImageClassifier:
    """Load a classifier written by `ImageClassifier.save` (or `effnet train`).

    A damaged folder (unreadable or inconsistent config.json, a truncated model.safetensors, weights of
    another shape than the config says) raises ValueError naming the file; a missing file FileNotFoundError.
    """
    directory = Path(directory)
    config_path, config = read_run_config(
        directory,
        FORMAT,
        "classifier",
        "image classifier",
        "; an embedder run loads with effnet.embedder.load",
        default_format=FORMAT,  # runs saved before the format field
    )
    try:
        labels = [str(label) for label in config["labels"]]
        if len(labels) != config["num_classes"]:
            raise ValueError(f"{len(labels)} labels for num_classes {config['num_classes']}")
        network = create_model(
            config_from_dict(config["model_config"]),
            num_classes=config["num_classes"],
            padding=config["padding"],
            drop_rate=config["dropout_rate"],
            bn_eps=config["bn_eps"],
        )
        from effnet.preprocessing import Preprocessing

        network.preprocessing = Preprocessing.from_dict(config["preprocessing"])
        known = {f.name for f in fields(HParams)}
        hparams = HParams(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in config["hparams"].items() if k in known}
        )
        spec = get_spec(config["model_spec"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise invalid_config(config_path, error) from None
    load_run_weights(network, directory / WEIGHTS_FILE, config_path)
    history_path = directory / HISTORY_FILE
    history = read_json(history_path).get("epochs", []) if history_path.is_file() else []
    return ImageClassifier(network, labels, spec, hparams, history, config.get("best_epoch"))


def _content_id(data) -> str:
    """Which samples, stable across processes (str hash() is salted per process: a resumed run in a new
    process would not recognize its own checkpoint)."""
    if hasattr(data, "fingerprint"):
        return data.fingerprint
    # surrogateescape: a file name that is not UTF-8 hashes as its bytes instead of raising
    return hashlib.sha256("\n".join(data.paths).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _fingerprint(spec: ModelSpec, train: ImageDataset, validation: ImageDataset | None, hp: HParams) -> dict:
    start = {} if spec.pretrained else {"pretrained": False}  # runs from pretrained weights keep their ids
    return {
        **start,
        "model": spec.name,
        "labels": list(train.index_to_label),
        "train": [len(train), _content_id(train)],
        "validation": len(validation) if validation is not None else 0,
        "hparams": hp.to_dict(),
    }


def create(
    train_data: ImageDataset,
    model_spec: str | ModelSpec = "efficientnet_lite0",
    validation_data: ImageDataset | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    train_whole_model: bool | None = None,
    pretrained: bool | None = None,
    dropout_rate: float | None = None,
    learning_rate: float | None = None,
    momentum: float | None = None,
    label_smoothing: float = 0.1,
    use_augmentation: bool = False,
    warmup_steps: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    model_dir: str | Path | None = None,
    hparams: HParams | None = None,
    run_options=None,
    **kwargs,
) -> ImageClassifier:
    """Train an image classifier on ``train_data`` (TFLite Model Maker's `image_classifier.create`).

    With the default frozen backbone (``train_whole_model=False``) the pretrained backbone's features are
    extracted once and a linear head is trained on them: epochs cost milliseconds. With
    ``train_whole_model=True`` the whole network is fine-tuned with augmentation (``use_augmentation``), a
    warm-up + cosine schedule and frozen BatchNorm statistics for small batches.

    ``pretrained``: start from the model's pretrained weights (default: the spec's, True). Weights that
    cannot be had are an error (`model_spec.PretrainedWeightsError`) that says how to get them; training
    from scratch is ``train_whole_model=True, pretrained=False`` (a frozen random backbone is refused).

    ``model_dir``: where checkpoints are written after every epoch; calling `create` again with the same
    ``model_dir`` and settings resumes from the last complete epoch (Ctrl-C and SIGTERM keep it).
    Other keyword arguments set `HParams` fields (``weight_decay``, ``color_jitter``, ``freeze_bn`` ...).

    ``run_options``: a `effnet.training.RunOptions` (precision, channels_last, compile, sync_bn, accumulate,
    checkpoint_every, keep_checkpoints, device). Under torchrun every rank calls `create` with the same
    arguments; fine-tuning runs DistributedDataParallel with ``batch_size`` as the global batch, and only
    rank 0 writes ``model_dir``. ``train_data`` may also be a `effnet.data.shards.ShardDataset`.
    """
    from effnet.data.shards import ShardDataset

    if not isinstance(train_data, (ImageDataset, ShardDataset)):
        raise TypeError(
            "train_data must be an image_classifier.DataLoader (ImageDataset), "
            f"got {type(train_data).__name__}; "
            "load it with DataLoader.from_folder(path)"
        )
    if "use_hub_library" in kwargs:
        raise ValueError(hub_not_used(f"use_hub_library={kwargs['use_hub_library']!r}"))
    spec = get_spec(model_spec)
    if pretrained is not None:
        spec = replace(spec, pretrained=bool(pretrained))
    values = {
        "batch_size": batch_size,
        "epochs": epochs,
        "train_whole_model": train_whole_model,
        "dropout_rate": dropout_rate,
        "learning_rate": learning_rate,
        "momentum": momentum,
    }
    known = {f.name for f in fields(HParams)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"create() got unknown arguments {unknown}; see effnet.image_classifier.HParams")
    base = hparams or HParams()
    settings = {**base.to_dict(), **{k: v for k, v in values.items() if v is not None}, **kwargs}
    settings.update(
        label_smoothing=label_smoothing, use_augmentation=use_augmentation, shuffle=shuffle, seed=seed
    )
    settings["warmup_steps"] = warmup_steps if warmup_steps is not None else base.warmup_steps
    hp = HParams(**settings)
    hp.validate()
    if len(train_data) < hp.batch_size and hp.train_whole_model:
        raise ValueError(
            f"train_data has {len(train_data)} images, fewer than batch_size={hp.batch_size}; "
            "pass a smaller batch_size"
        )
    if validation_data is not None and list(validation_data.index_to_label) != list(
        train_data.index_to_label
    ):
        raise ValueError("validation_data has other classes than train_data; split one DataLoader instead")
    hp = hp.resolved(steps_per_epoch=-(-len(train_data) // hp.batch_size))
    torch.manual_seed(hp.seed)
    model_dir = Path(model_dir) if model_dir is not None else None
    fingerprint = _fingerprint(spec, train_data, validation_data, hp)

    network = spec.create_network(
        train_data.num_classes, hp.dropout_rate, hp.drop_path_rate, hp.train_whole_model
    )
    with run_lock(model_dir if is_main_process() else None), sigterm_as_interrupt():
        if hp.train_whole_model:
            resuming = StepCheckpoints(model_dir, fingerprint).exists()
            if hp.probe_first and not resuming and getattr(network, "weights_report", None) is not None:
                # every rank fits the same head (deterministic); DDP starts from rank 0's copy anyway
                probe = replace(hp, epochs=hp.probe_epochs, use_augmentation=False, warmup_steps=0)
                _train_frozen(network, train_data, None, probe, None, fingerprint)
            history = fine_tune(network, train_data, validation_data, hp, model_dir, fingerprint, run_options)
        else:
            history = _train_frozen(network, train_data, validation_data, hp, model_dir, fingerprint)
        classifier = ImageClassifier(
            network, train_data.index_to_label, spec, hp, history.epochs, history.best_epoch
        )
        classifier.train_data = train_data  # calibration images for the default int8 export
        if model_dir is not None and is_main_process():
            classifier.save(model_dir)
    return classifier


def _train_frozen(network, train_data, validation_data, hp, model_dir, fingerprint):
    from effnet.data import TrainTransform

    network.eval().to(memory_format=torch.channels_last)
    eval_transform = EvalTransform(network.preprocessing)
    extract = lambda data, transform, desc: extract_features(  # noqa: E731
        network, data, transform, hp.batch_size, hp.num_workers, desc
    )
    train = extract(train_data, eval_transform, "extracting features")
    if hp.use_augmentation:  # augmented copies, extracted once and trained on with the clean features
        views = [train]
        for view in range(hp.augment_views):
            augment = TrainTransform(
                network.preprocessing,
                seed=epoch_seed(hp.seed, 10_000 + view),
                scale=hp.crop_scale,
                flip=hp.flip,
            )
            views.append(extract(train_data, augment, f"augmented features {view + 1}/{hp.augment_views}"))
        train = (np.concatenate([v[0] for v in views]), np.concatenate([v[1] for v in views]))
    val = (
        extract(validation_data, eval_transform, "validation features")
        if validation_data is not None
        else None
    )
    with single_thread():
        linear, history = train_linear_head(train, val, network.num_classes, hp, model_dir, fingerprint)
    network.classifier.load_state_dict(linear.state_dict())
    return history
