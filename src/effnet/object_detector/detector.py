"""`object_detector.create` and the trained `ObjectDetector`: evaluate, detect, save, load, export."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effnet.object_detector.evaluation import Detections
from effnet.object_detector.hparams import DetectorHParams
from effnet.object_detector.model_spec import EfficientDetSpec
from effnet.object_detector.model_spec import get as get_spec
from effnet.object_detector.prediction import to_image_pixels
from effnet.object_detector.samples import ResizedImages
from effnet.object_detector.training import evaluate_predictions, predict, train_detector
from effnet.training.dense_hparams import resolve_hparams
from effnet.training.dense_task import RUN_FILES, DenseTaskModel, check_training_data, train_dense_run
from effnet.training.run_folder import CONFIG_FILE

__all__ = ["CONFIG_FILE", "FORMAT", "RUN_FILES", "ObjectDetector", "create", "load"]

log = logging.getLogger(__name__)
FORMAT = "effnet.object_detector/1"
REPORT_SCORE = 0.3  # detections drawn in the report: those at least this confident, else the best few
FALLBACK_SCORE = 0.05


class ObjectDetector(DenseTaskModel):
    """A trained detector: the network, its label names and how it was trained."""

    FORMAT = FORMAT
    TASK = "object detector"
    HPARAMS = DetectorHParams
    DATA_TYPE = "object_detector.DataLoader (effnet.data.detection.DetectionData)"
    DATA_LOADERS = "DataLoader.from_pascal_voc(...), from_csv(...) or from_coco(...)"
    LOAD_HINT = "; a classifier run loads with effnet.image_classifier.load"

    def __init__(
        self,
        network: nn.Module,
        label_names: Sequence[str],
        model_spec: EfficientDetSpec,
        hparams: DetectorHParams | None = None,
        history: list[dict] | None = None,
        best_epoch: int | None = None,
    ) -> None:
        hparams = hparams or DetectorHParams()
        if hparams.max_detections is None:
            hparams = replace(hparams, max_detections=model_spec.tflite_max_detections)
        super().__init__(network, label_names, hparams, history, best_epoch)
        self.model_spec = model_spec

    @property
    def _model_name(self) -> str:
        return self.model_spec.name

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
        self._check_data(data)
        images, found = self._detections(data, batch_size)
        result: list[Detections | None] = [None] * len(data.samples)
        for position, sample_index in enumerate(images.kept):
            sample = data.samples[sample_index]
            result[sample_index] = to_image_pixels(
                found[position], self.input_size, sample.width, sample.height
            )
        return result

    # exporting ---------------------------------------------------------------------------------------------
    def export(self, export_dir: str | Path, *args, **kwargs):
        """Write the detector as .tflite / .onnx with its post-processing (Model Maker's ``export``)."""
        from effnet.object_detector.exporting import export_detector

        return export_detector(self, export_dir, *args, **kwargs)

    def evaluate_tflite(self, tflite_filepath: str | Path, data, batch_size: int = 1) -> dict[str, float]:
        """COCO metrics of an exported file (.tflite or .onnx) on ``data``, as `evaluate` gives them."""
        from effnet.object_detector.exporting import evaluate_exported

        self._check_labels(data)
        return evaluate_exported(tflite_filepath, data)

    def _run_config(self) -> dict:
        return {"tflite_max_detections": self.model_spec.tflite_max_detections}

    @classmethod
    def _rebuild(cls, config: dict, labels: list[str]) -> tuple[nn.Module, dict]:
        from effnet.models.detection import build_detector

        spec = EfficientDetSpec(
            config["model_spec"], tflite_max_detections=int(config.get("tflite_max_detections", 25))
        )
        conventions = {key: config[key] for key in ("padding", "bn_eps") if key in config}
        network = build_detector(spec.name, len(labels), int(config["input_size"]), **conventions)
        return network, {"model_spec": spec}


def _build_network(name: str, num_classes: int, pretrained: bool, input_size: int | None) -> nn.Module:
    from effnet.factory import create_detector

    return create_detector(name, num_classes, pretrained_backbone=pretrained, input_size=input_size)


def load(directory: str | Path) -> ObjectDetector:
    """Load a detector written by `ObjectDetector.save` (or ``effnet train`` of detection data); a damaged
    folder raises ValueError naming the file, a missing file FileNotFoundError (`DenseTaskModel.load_run`)."""
    return ObjectDetector.load_run(directory)


def _sample_identity(sample) -> tuple[bytes, ...]:
    """What identifies a training sample for resuming: its path, boxes and labels."""
    return (
        str(sample.path).encode("utf-8", "surrogateescape"),
        np.ascontiguousarray(sample.boxes, dtype=np.float32).tobytes(),
        np.ascontiguousarray(sample.labels, dtype=np.int64).tobytes(),
    )


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
    check_training_data(
        train_data,
        validation_data,
        ObjectDetector.data_type_error,
        "check the annotations folder and the label map",
    )
    spec = get_spec(model_spec)
    given = {
        "epochs": epochs if epochs is not None else spec.epochs,
        "batch_size": batch_size if batch_size is not None else spec.batch_size,
        "input_size": kwargs.pop("input_size", None) or spec.input_size,
    }
    hp = resolve_hparams(
        DetectorHParams, hparams, given, kwargs, train_whole_model, "effnet.object_detector.DetectorHParams"
    )
    torch.manual_seed(hp.seed)
    network = _build_network(spec.name, len(train_data.label_names), spec.pretrained, hp.input_size)
    hp = replace(
        hp, input_size=network.input_size, max_detections=hp.max_detections or spec.tflite_max_detections
    )
    detector = ObjectDetector(network, train_data.label_names, spec, hp)
    detector.train_data = train_data
    if not do_train:
        return detector
    identity = {"task": "object_detector", "model": spec.name, "pretrained": spec.pretrained}
    return train_dense_run(
        detector, validation_data, model_dir, run_options, train_detector, identity, _sample_identity
    )
