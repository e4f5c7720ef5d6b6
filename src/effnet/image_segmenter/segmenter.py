"""`image_segmenter.create` and the trained `ImageSegmenter`: evaluate, segment, save, load, export."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effnet.checkpoint import atomic_path, invalid_config, read_json, write_json, write_text
from effnet.distributed import is_main_process
from effnet.image_segmenter.hparams import SegmenterHParams
from effnet.image_segmenter.metrics import confusion_matrix, segmentation_metrics
from effnet.image_segmenter.samples import ResizedSegmentation
from effnet.image_segmenter.training import predict_labels, train_segmenter
from effnet.models.segmentation.spec import DEFAULT_SEGMENTER, SegmenterSpec, get_segmenter_spec
from effnet.run_lock import run_lock
from effnet.runtime.segmentation import labels_at_size
from effnet.training.checkpoints import StepCheckpoints
from effnet.training.control import sigterm_as_interrupt
from effnet.weights.load import load_run_weights

log = logging.getLogger(__name__)
FORMAT = "effnet.image_segmenter/1"
WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE, HISTORY_FILE = (
    "model.safetensors",
    "labels.txt",
    "config.json",
    "history.json",
)
RUN_FILES = (WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE, HISTORY_FILE, "report.html")


def _data_type_error(argument: str, data) -> TypeError:
    return TypeError(
        f"{argument} must be an image_segmenter.DataLoader (effnet.data.segmentation.SegmentationData), got "
        f"{type(data).__name__}; load one with DataLoader.from_folder(images_dir, masks_dir)"
    )


class ImageSegmenter:
    """A trained segmenter: the network, its class names (index 0 first) and how it was trained."""

    def __init__(
        self,
        network: nn.Module,
        label_names: Sequence[str],
        hparams: SegmenterHParams | None = None,
        history: list[dict] | None = None,
        best_epoch: int | None = None,
    ) -> None:
        self.network = network.eval()
        self.label_names = list(label_names)
        self.hparams = hparams or SegmenterHParams()
        self.history = history or []
        self.best_epoch = best_epoch
        self.train_data = None  # set by create(): calibration images for an int8 export

    @property
    def model_spec(self):
        return self.network.spec

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def input_size(self) -> int:
        return self.network.input_size

    @property
    def preprocessing(self):
        return self.network.preprocessing

    def __repr__(self) -> str:
        return (
            f"ImageSegmenter({self.network.name}, {self.num_classes} classes, input {self.input_size}, "
            f"output stride {self.network.spec.output_stride}, best epoch {self.best_epoch})"
        )

    # prediction and evaluation ------------------------------------------------------------------------------
    def _check_labels(self, data) -> None:
        if not hasattr(data, "samples") or not hasattr(data, "label_names"):
            raise _data_type_error("data", data)
        if list(data.label_names) != self.label_names:
            raise ValueError(
                f"the data's labels {list(data.label_names)[:5]} differ from the model's "
                f"{self.label_names[:5]}; evaluate on data with the same label map"
            )

    def _label_maps(self, data, batch_size: int) -> tuple[ResizedSegmentation, dict[int, np.ndarray]]:
        """(the resized images, label map at each image's own size by sample index)."""
        images = ResizedSegmentation(
            data, self.input_size, self.preprocessing.interpolation, "decoding images", progress=False
        )
        found = {}
        batches = images.batches(self.preprocessing, batch_size)
        for position, _, logits in predict_labels(self.network, batches):
            sample = data.samples[images.kept[position]]
            found[images.kept[position]] = labels_at_size(
                logits.permute(1, 2, 0).numpy(), sample.width, sample.height
            )
        return images, found

    def segment(self, data, batch_size: int = 8) -> list[np.ndarray | None]:
        """The label map (uint8 class indices at the image's own size) of every sample of ``data`` (a
        `SegmentationData`; None for an image that cannot be read)."""
        if not hasattr(data, "samples"):
            raise _data_type_error("data", data)
        _, found = self._label_maps(data, batch_size)
        return [found.get(index) for index in range(len(data.samples))]

    def evaluate(self, data, batch_size: int = 8) -> dict[str, float]:
        """``{"mIoU", "pixel_accuracy", "IoU/<label>" ...}`` on ``data``, from the confusion matrix of all its
        pixels at each image's own size (the label map upsampled by nearest neighbour, as `effnet.runtime`'s
        ``segment`` gives it); mask pixels of 255 are ignored."""
        self._check_labels(data)
        _, found = self._label_maps(data, batch_size)
        confusion = np.zeros((self.num_classes,) * 2, dtype=np.int64)
        for index, labels in found.items():
            confusion += confusion_matrix(labels, data.samples[index].mask(), self.num_classes)
        return segmentation_metrics(confusion, self.label_names)

    def write_report(
        self, directory: str | Path, data, run_info: dict | None = None, images: int = 8, batch_size: int = 8
    ) -> tuple[dict[str, float], Path]:
        """Evaluate on ``data`` and write ``directory``/report.html: loss and mIoU curves, IoU per class and
        the first ``images`` images of ``data`` with their true and predicted masks. Returns (metrics,
        path)."""
        from effnet.report.segmentation import write_segmentation_report

        metrics = self.evaluate(data, batch_size)
        shown = type(data)(data.samples[:images], data.label_names)
        predicted = self.segment(shown, batch_size)
        examples = [
            (sample, labels)
            for sample, labels in zip(shown.samples, predicted, strict=True)
            if labels is not None
        ]
        info = {"model": self.network.name, "input size": self.input_size, **(run_info or {})}
        path = write_segmentation_report(directory, info, self.history, metrics, examples, self.label_names)
        return metrics, path

    # saving -------------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the run folder: model.safetensors, config.json (how to rebuild the network), labels.txt and
        the training history."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "model_spec": self.network.spec.name,
            "spec": asdict(self.network.spec),  # the whole row: a custom SegmenterSpec rebuilds as trained
            "output_stride": self.network.spec.output_stride,
            # the conventions of the backbone's weights (TF-trained Lite: SAME padding, BN eps 1e-3), which a
            # network rebuilt without them would not have
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
            save_file(
                state, tmp, metadata={"effnet": json.dumps({"format": FORMAT, "labels": self.label_names})}
            )
        write_text(directory / LABELS_FILE, "\n".join(self.label_names) + "\n")
        write_json(directory / CONFIG_FILE, config)
        write_json(directory / HISTORY_FILE, {"best_epoch": self.best_epoch, "epochs": self.history})
        return directory

    def export(self, export_dir: str | Path | None = None, *args, **kwargs):
        """Write the segmenter as .tflite / .onnx (float, fp16 or int8) with its labels (Model Maker's
        ``export``); see `effnet.image_segmenter.exporting.export_segmenter`."""
        from effnet.image_segmenter.exporting import export_segmenter

        return export_segmenter(self, export_dir, *args, **kwargs)

    def evaluate_tflite(self, tflite_filepath: str | Path, data) -> dict[str, float]:
        """The metrics of an exported file (.tflite or .onnx) on ``data``, as `evaluate` gives them."""
        from effnet.image_segmenter.exporting import evaluate_exported

        self._check_labels(data)
        return evaluate_exported(tflite_filepath, data)

    def summary(self, print_fn=print) -> None:
        """Print the network's parameter counts: total, trained (the head only with a frozen backbone) and
        frozen."""
        total = sum(p.numel() for p in self.network.parameters())
        backbone = sum(p.numel() for p in self.network.backbone.parameters())
        trained = total if self.hparams.train_whole_model else total - backbone
        side = self.input_size
        print_fn(f'Model: "{self.network.name}", {self.num_classes} classes, input 3x{side}x{side}')
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trained:,}")
        print_fn(f"Non-trainable params: {total - trained:,}")


def _build_network(
    spec: SegmenterSpec, num_classes: int, pretrained: bool, input_size: int, output_stride: int | None
) -> nn.Module:
    from effnet.factory import create_segmenter

    return create_segmenter(
        spec, num_classes, pretrained_backbone=pretrained, input_size=input_size, output_stride=output_stride
    )


def _spec_from_dict(values: dict) -> SegmenterSpec:
    known = {f.name for f in fields(SegmenterSpec)}
    values = {k: v for k, v in values.items() if k in known}
    return SegmenterSpec(**{**values, "atrous_rates": tuple(values.get("atrous_rates", ()))})


def load(directory: str | Path) -> ImageSegmenter:
    """Load a segmenter written by `ImageSegmenter.save` (or ``effnet train`` of segmentation data).

    A damaged folder (unreadable or inconsistent config.json, a truncated model.safetensors) raises
    ValueError naming the file; a missing file FileNotFoundError."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: not a saved effnet segmenter ({CONFIG_FILE} is missing)")
    config = read_json(config_path)
    if config.get("format") != FORMAT:
        raise ValueError(
            f"{config_path}: not an effnet segmenter (format {config.get('format')!r}, expected {FORMAT!r})"
        )
    try:
        labels = [str(label) for label in config["labels"]]
        if len(labels) != config["num_classes"]:
            raise ValueError(f"{len(labels)} labels for num_classes {config['num_classes']}")
        from effnet.models.segmentation import build_segmenter

        spec = config.get("spec")
        spec = get_segmenter_spec(config["model_spec"]) if spec is None else _spec_from_dict(spec)
        network = build_segmenter(
            spec,
            len(labels),
            int(config["input_size"]),
            int(config["output_stride"]),
            padding=str(config["padding"]),
            bn_eps=float(config["bn_eps"]),
        )
        from effnet.preprocessing import Preprocessing

        network.preprocessing = Preprocessing.from_dict(config["preprocessing"])
        known = {f.name for f in fields(SegmenterHParams)}
        hparams = SegmenterHParams(**{k: v for k, v in config["hparams"].items() if k in known})
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise invalid_config(config_path, error) from None
    load_run_weights(network, directory / WEIGHTS_FILE, config_path)
    history_path = directory / HISTORY_FILE
    history = read_json(history_path).get("epochs", []) if history_path.is_file() else []
    return ImageSegmenter(network.eval(), labels, hparams, history, config.get("best_epoch"))


def _content_id(data) -> str:
    """Which images and masks, stable across processes (a resumed run must recognize its checkpoint)."""
    digest = hashlib.sha256()
    for sample in data.samples:
        for path in (sample.path, sample.mask_path):
            digest.update(str(path).encode("utf-8", "surrogateescape"))
            digest.update(str(path.stat().st_size if path.exists() else -1).encode())
    return digest.hexdigest()[:16]


def create(
    train_data,
    model_spec: str | SegmenterSpec = DEFAULT_SEGMENTER,
    validation_data=None,
    epochs: int | None = None,
    batch_size: int | None = None,
    train_whole_model: bool = False,
    do_train: bool = True,
    model_dir: str | Path | None = None,
    hparams: SegmenterHParams | None = None,
    run_options=None,
    pretrained: bool = True,
    **kwargs,
) -> ImageSegmenter:
    """Train a semantic segmenter on ``train_data`` (an `image_segmenter.DataLoader`).

    ``model_spec``: a name from `effnet.list_segmenters()` (``"lraspp_efficientnet_lite0"``, the default:
    its backbone's ImageNet weights are bundled; ``"deeplabv3_mobilenet_v2"``, ``"lraspp_mobilenet_v3_large"``
    ...) or a `SegmenterSpec` (e.g. with DeepLabV3's ``atrous_rates=(6, 12, 18)``). With
    ``train_whole_model=False`` (the default) the pretrained backbone stays frozen: its maps of every training
    image (and of its mirror image) are computed once and the head trains on them.
    ``train_whole_model=True`` trains the whole network, the backbone at a tenth of the learning rate.
    Images and masks are resized to the square ``input_size`` (default 256); the loss is per-pixel
    cross-entropy with 255 ignored.

    ``do_train=False`` returns the untrained segmenter. ``model_dir``: checkpoints after every epoch and the
    run folder `save` writes; calling `create` again with the same ``model_dir`` and settings resumes.
    ``pretrained=False`` starts the backbone from random weights. Other keyword arguments set
    `SegmenterHParams` fields (``learning_rate``, ``input_size``, ``output_stride``, ``flip``, ``seed`` ...).
    ``run_options``: an `effnet.training.RunOptions` (precision, device, step checkpoints ...).
    """
    for argument, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None and not (hasattr(data, "samples") and hasattr(data, "label_names")):
            raise _data_type_error(argument, data)
    if validation_data is not None and list(validation_data.label_names) != list(train_data.label_names):
        raise ValueError("validation_data has other labels than train_data; split one DataLoader instead")
    if len(train_data) == 0:
        raise ValueError("train_data holds no images; check the images and masks folders")
    spec = get_segmenter_spec(model_spec)
    known = {f.name for f in fields(SegmenterHParams)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"create() got unknown arguments {unknown}; see effnet.image_segmenter.SegmenterHParams"
        )
    base = hparams or SegmenterHParams()
    values = {"epochs": epochs, "batch_size": batch_size}
    settings = {**base.to_dict(), **{k: v for k, v in values.items() if v is not None}, **kwargs}
    settings["train_whole_model"] = bool(train_whole_model)
    hp = SegmenterHParams(**settings)
    hp.validate()
    hp = hp.resolved()
    torch.manual_seed(hp.seed)
    network = _build_network(spec, len(train_data.label_names), pretrained, hp.input_size, hp.output_stride)
    hp = replace(hp, output_stride=network.spec.output_stride)
    segmenter = ImageSegmenter(network, train_data.label_names, hp)
    segmenter.train_data = train_data
    if not do_train:
        return segmenter
    if len(train_data) < hp.batch_size:
        raise ValueError(
            f"train_data has {len(train_data)} images, fewer than batch_size={hp.batch_size}; pass a smaller "
            "batch_size"
        )
    model_dir = Path(model_dir) if model_dir is not None else None
    fingerprint = {
        "task": "image_segmenter",
        "model": asdict(network.spec),
        "pretrained": pretrained,
        "labels": list(train_data.label_names),
        "train": [len(train_data), _content_id(train_data)],
        "validation": len(validation_data) if validation_data is not None else 0,
        "hparams": hp.to_dict(),
    }
    with run_lock(model_dir if is_main_process() else None), sigterm_as_interrupt():
        resuming = StepCheckpoints(model_dir, fingerprint).exists()
        if hp.train_whole_model and hp.probe_epochs and not resuming:
            # the head first, on cached features: a resumed run's checkpoint already holds its result
            probe = replace(hp, train_whole_model=False, epochs=hp.probe_epochs)
            train_segmenter(network, train_data, None, probe, None, fingerprint, run_options)
            for parameter in network.parameters():
                parameter.requires_grad_(True)
        history = train_segmenter(
            network, train_data, validation_data, hp, model_dir, fingerprint, run_options
        )
        segmenter = ImageSegmenter(network, train_data.label_names, hp, history.epochs, history.best_epoch)
        segmenter.train_data = train_data
        if model_dir is not None and is_main_process():
            segmenter.save(model_dir)
    return segmenter
