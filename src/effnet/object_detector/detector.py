"""`object_detector.create` and the trained `ObjectDetector`: evaluate, detect, save, load, export."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effnet.checkpoint import atomic_path, invalid_config, read_json, write_json, write_text
from effnet.distributed import is_main_process
from effnet.object_detector.evaluation import Detections
from effnet.object_detector.hparams import DetectorHParams
from effnet.object_detector.model_spec import EfficientDetSpec
from effnet.object_detector.model_spec import get as get_spec
from effnet.object_detector.prediction import to_image_pixels
from effnet.object_detector.samples import ResizedImages
from effnet.object_detector.training import evaluate_predictions, predict, train_detector
from effnet.run_lock import run_lock
from effnet.training.checkpoints import StepCheckpoints
from effnet.training.control import sigterm_as_interrupt
from effnet.weights.load import load_run_weights

log = logging.getLogger(__name__)
FORMAT = "effnet.object_detector/1"
WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE, HISTORY_FILE = (
    "model.safetensors",
    "labels.txt",
    "config.json",
    "history.json",
)
REPORT_SCORE = 0.3  # detections drawn in the report: those at least this confident, else the best few
FALLBACK_SCORE = 0.05
RUN_FILES = (WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE, HISTORY_FILE, "report.html")


def _data_type_error(argument: str, data) -> TypeError:
    return TypeError(
        f"{argument} must be an object_detector.DataLoader (effnet.data.detection.DetectionData), got "
        f"{type(data).__name__}; load one with DataLoader.from_pascal_voc(...), from_csv(...) or "
        "from_coco(...)"
    )


class ObjectDetector:
    """A trained detector: the network, its label names and how it was trained."""

    def __init__(
        self,
        network: nn.Module,
        label_names: Sequence[str],
        model_spec: EfficientDetSpec,
        hparams: DetectorHParams | None = None,
        history: list[dict] | None = None,
        best_epoch: int | None = None,
    ) -> None:
        self.network = network.eval()
        self.label_names = list(label_names)
        self.model_spec = model_spec
        hparams = hparams or DetectorHParams()
        if hparams.max_detections is None:
            hparams = replace(hparams, max_detections=model_spec.tflite_max_detections)
        self.hparams = hparams
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
    def postprocessing(self) -> dict:
        """The post-processing `evaluate` runs and `export` writes into the file (``score_threshold``,
        ``iou_threshold``, ``max_detections``): one setting, so the file scores what `evaluate` reports."""
        hp = self.hparams
        return {
            "score_threshold": hp.score_threshold,
            "iou_threshold": hp.iou_threshold,
            "max_detections": hp.max_detections,
        }

    def __repr__(self) -> str:
        return (
            f"ObjectDetector({self.model_spec.name}, {self.num_classes} classes, input {self.input_size}, "
            f"best epoch {self.best_epoch})"
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

    def _detections(self, data, batch_size: int) -> tuple[ResizedImages, list[Detections]]:
        images = ResizedImages(data, self.input_size, "decoding images", progress=False)
        found = [None] * len(images)
        batches = images.batches(self.preprocessing, batch_size)
        for index, detections, _, _ in predict(self.network, self.network, batches, self.hparams):
            found[index] = detections
        return images, found

    def evaluate(self, data, batch_size: int = 8) -> dict[str, float]:
        """COCO metrics on ``data`` (Model Maker's dict: ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``,
        ``APl``, ``ARmax1``, ``ARmax10``, ``ARmax100``, ``ARs``, ``ARm``, ``ARl``, ``AP_/<label>``), by
        pycocotools' COCOeval; boxes are compared in each image's own pixels."""
        self._check_labels(data)
        images = ResizedImages(data, self.input_size, "decoding images", progress=False)
        batches = images.batches(self.preprocessing, batch_size)
        metrics, _, _ = evaluate_predictions(self.network, self.network, batches, images, data, self.hparams)
        return metrics

    def write_report(
        self, directory: str | Path, data, run_info: dict | None = None, images: int = 12, batch_size: int = 8
    ) -> tuple[dict[str, float], Path]:
        """Evaluate on ``data`` and write ``directory``/report.html: loss and AP curves, AP per class and
        the first ``images`` images of ``data`` with their predicted and true boxes. Returns (metrics,
        report path)."""
        from effnet.report.detection import write_detection_report

        self._check_labels(data)
        resized = ResizedImages(data, self.input_size, "decoding images", progress=False)
        batches = resized.batches(self.preprocessing, batch_size)
        metrics, _, found = evaluate_predictions(
            self.network, self.network, batches, resized, data, self.hparams
        )
        examples = []
        for index in sorted(found)[:images]:
            sample, detections = data.samples[index], found[index]
            shown = detections.scores >= REPORT_SCORE
            if not shown.any():  # a weak model: its best few, as many as the image has objects
                shown[: len(sample.labels)] = True  # scores come sorted, highest first
                shown &= detections.scores >= FALLBACK_SCORE
            examples.append(
                {
                    "path": str(sample.path),
                    "true_boxes": sample.boxes.tolist(),
                    "true_labels": sample.labels.tolist(),
                    "boxes": detections.boxes[shown].tolist(),
                    "labels": detections.labels[shown].tolist(),
                    "scores": detections.scores[shown].tolist(),
                }
            )
        info = {"model": self.model_spec.name, "input size": self.input_size, **(run_info or {})}
        path = write_detection_report(directory, info, self.history, metrics, examples, self.label_names)
        return metrics, path

    def detect(self, data, batch_size: int = 8) -> list[Detections | None]:
        """Detections of every sample of ``data`` (a `DetectionData`), in each image's own pixels (None for
        an image that cannot be decoded)."""
        if not hasattr(data, "samples"):
            raise _data_type_error("data", data)
        images, found = self._detections(data, batch_size)
        result: list[Detections | None] = [None] * len(data.samples)
        for position, sample_index in enumerate(images.kept):
            sample = data.samples[sample_index]
            result[sample_index] = to_image_pixels(
                found[position], self.input_size, sample.width, sample.height
            )
        return result

    # saving -------------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the run folder: model.safetensors, config.json (how to rebuild the network), labels.txt and
        the training history."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT,
            "model_spec": self.model_spec.name,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "labels": self.label_names,
            "preprocessing": self.preprocessing.to_dict(),
            "tflite_max_detections": self.model_spec.tflite_max_detections,
            # the conventions of the backbone's weights (TF-trained Lite: SAME padding, BN eps 1e-3), which a
            # network rebuilt without its pretrained weights would not have
            "padding": self.network.backbone.padding,
            "bn_eps": self.network.backbone.config.arch.bn_eps,
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

    def export(self, export_dir: str | Path, *args, **kwargs):
        """Write the detector as .tflite / .onnx with its post-processing (Model Maker's ``export``)."""
        from effnet.object_detector.exporting import export_detector

        return export_detector(self, export_dir, *args, **kwargs)

    def evaluate_tflite(self, tflite_filepath: str | Path, data, batch_size: int = 1) -> dict[str, float]:
        """COCO metrics of an exported file (.tflite or .onnx) on ``data``, as `evaluate` gives them."""
        from effnet.object_detector.exporting import evaluate_exported

        self._check_labels(data)
        return evaluate_exported(tflite_filepath, data)

    def summary(self, print_fn=print) -> None:
        """Print the network's parameter counts: total, trained (the neck and heads only with a frozen
        backbone) and frozen."""
        total = sum(p.numel() for p in self.network.parameters())
        backbone = sum(p.numel() for p in self.network.backbone.parameters())
        trained = total if self.hparams.train_whole_model else total - backbone
        side = self.input_size
        print_fn(f'Model: "{self.model_spec.name}", {self.num_classes} classes, input 3x{side}x{side}')
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {trained:,}")
        print_fn(f"Non-trainable params: {total - trained:,}")


def _build_network(name: str, num_classes: int, pretrained: bool, input_size: int | None) -> nn.Module:
    from effnet.factory import create_detector

    return create_detector(name, num_classes, pretrained_backbone=pretrained, input_size=input_size)


def load(directory: str | Path) -> ObjectDetector:
    """Load a detector written by `ObjectDetector.save` (or ``effnet train`` of detection data).

    A damaged folder (unreadable or inconsistent config.json, a truncated model.safetensors) raises
    ValueError naming the file; a missing file FileNotFoundError."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: not a saved effnet object detector ({CONFIG_FILE} is missing)")
    config = read_json(config_path)
    if config.get("format") != FORMAT:
        raise ValueError(
            f"{config_path}: not an effnet object detector (format {config.get('format')!r}, expected "
            f"{FORMAT!r}); a classifier run loads with effnet.image_classifier.load"
        )
    try:
        labels = [str(label) for label in config["labels"]]
        if len(labels) != config["num_classes"]:
            raise ValueError(f"{len(labels)} labels for num_classes {config['num_classes']}")
        spec = EfficientDetSpec(
            config["model_spec"], tflite_max_detections=int(config.get("tflite_max_detections", 25))
        )
        from effnet.models.detection import build_detector

        conventions = {key: config[key] for key in ("padding", "bn_eps") if key in config}
        network = build_detector(spec.name, len(labels), int(config["input_size"]), **conventions)
        from effnet.preprocessing import Preprocessing

        network.preprocessing = Preprocessing.from_dict(config["preprocessing"])
        known = {f.name for f in fields(DetectorHParams)}
        hparams = DetectorHParams(**{k: v for k, v in config["hparams"].items() if k in known})
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise invalid_config(config_path, error) from None
    load_run_weights(network, directory / WEIGHTS_FILE, config_path)
    history_path = directory / HISTORY_FILE
    history = read_json(history_path).get("epochs", []) if history_path.is_file() else []
    return ObjectDetector(network.eval(), labels, spec, hparams, history, config.get("best_epoch"))


def _content_id(data) -> str:
    """Which samples and boxes, stable across processes (a resumed run must recognize its checkpoint)."""
    digest = hashlib.sha256()
    for sample in data.samples:
        digest.update(str(sample.path).encode("utf-8", "surrogateescape"))
        digest.update(np.ascontiguousarray(sample.boxes, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(sample.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def create(
    train_data,
    model_spec: str | EfficientDetSpec = "efficientdet_lite0",
    validation_data=None,
    epochs: int | None = None,
    batch_size: int | None = None,
    train_whole_model: bool = False,
    do_train: bool = True,
    model_dir: str | Path | None = None,
    hparams: DetectorHParams | None = None,
    run_options=None,
    **kwargs,
) -> ObjectDetector:
    """Train an object detector on ``train_data`` (TFLite Model Maker's `object_detector.create`).

    ``train_data`` / ``validation_data``: `object_detector.DataLoader`
    (`effnet.data.detection.DetectionData`).
    ``model_spec``: a name (``"efficientdet_lite0"`` ... ``"efficientdet_lite4"``, ``"ssdlite_mobilenet_v2"``
    ..., see `effnet.models.detection.list_detectors`) or an `EfficientDetSpec`.

    With ``train_whole_model=False`` (the default) the ImageNet-pretrained backbone stays frozen: its
    features of every training image (and of its mirror image) are computed once, and the neck (BiFPN /
    SSD extra layers) and the box and class heads train on them. ``train_whole_model=True`` trains the
    whole network on the images, the backbone at a tenth of the learning rate. Images are resized to the
    model's square input (boxes alike); the loss is focal loss plus a box regression loss.

    ``do_train=False`` returns the untrained detector. ``model_dir``: checkpoints after every epoch, and the
    run folder `save` writes; calling `create` again with the same ``model_dir`` and settings resumes.
    Other keyword arguments set `DetectorHParams` fields (``learning_rate``, ``input_size``, ``flip``,
    ``seed`` ...). ``run_options``: an `effnet.training.RunOptions` (precision, device, step checkpoints ...).
    """
    for argument, data in (("train_data", train_data), ("validation_data", validation_data)):
        if data is not None and not (hasattr(data, "samples") and hasattr(data, "label_names")):
            raise _data_type_error(argument, data)
    if validation_data is not None and list(validation_data.label_names) != list(train_data.label_names):
        raise ValueError("validation_data has other labels than train_data; split one DataLoader instead")
    if len(train_data) == 0:
        raise ValueError("train_data holds no images; check the annotations folder and the label map")
    spec = get_spec(model_spec)
    known = {f.name for f in fields(DetectorHParams)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"create() got unknown arguments {unknown}; see effnet.object_detector.DetectorHParams"
        )
    base = hparams or DetectorHParams()
    values = {
        "epochs": epochs if epochs is not None else spec.epochs,
        "batch_size": batch_size if batch_size is not None else spec.batch_size,
        "input_size": kwargs.pop("input_size", None) or spec.input_size,
    }
    settings = {**base.to_dict(), **{k: v for k, v in values.items() if v is not None}, **kwargs}
    settings["train_whole_model"] = bool(train_whole_model)
    hp = DetectorHParams(**settings)
    hp.validate()
    hp = hp.resolved()
    torch.manual_seed(hp.seed)
    network = _build_network(spec.name, len(train_data.label_names), spec.pretrained, hp.input_size)
    hp = replace(
        hp, input_size=network.input_size, max_detections=hp.max_detections or spec.tflite_max_detections
    )
    detector = ObjectDetector(network, train_data.label_names, spec, hp)
    detector.train_data = train_data
    if not do_train:
        return detector
    if len(train_data) < hp.batch_size:
        raise ValueError(
            f"train_data has {len(train_data)} images, fewer than batch_size={hp.batch_size}; pass a smaller "
            "batch_size"
        )
    model_dir = Path(model_dir) if model_dir is not None else None
    fingerprint = {
        "task": "object_detector",
        "model": spec.name,
        "pretrained": spec.pretrained,
        "labels": list(train_data.label_names),
        "train": [len(train_data), _content_id(train_data)],
        "validation": len(validation_data) if validation_data is not None else 0,
        "hparams": hp.to_dict(),
    }
    with run_lock(model_dir if is_main_process() else None), sigterm_as_interrupt():
        resuming = StepCheckpoints(model_dir, fingerprint).exists()
        if hp.train_whole_model and hp.probe_epochs and not resuming:
            # the heads first, on cached features: a resumed run's checkpoint already holds their result
            probe = replace(hp, train_whole_model=False, epochs=hp.probe_epochs)
            train_detector(network, train_data, None, probe, None, fingerprint, run_options)
            for parameter in network.parameters():
                parameter.requires_grad_(True)
        history = train_detector(
            network, train_data, validation_data, hp, model_dir, fingerprint, run_options
        )
        detector = ObjectDetector(
            network, train_data.label_names, spec, hp, history.epochs, history.best_epoch
        )
        detector.train_data = train_data
        if model_dir is not None and is_main_process():
            detector.save(model_dir)
    return detector
