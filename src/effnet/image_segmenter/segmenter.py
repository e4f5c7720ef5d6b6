"""`image_segmenter.create` and the trained `ImageSegmenter`: evaluate, segment, save, load, export."""

from __future__ import annotations

import logging
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effnet.image_segmenter.hparams import SegmenterHParams
from effnet.image_segmenter.metrics import confusion_matrix, segmentation_metrics
from effnet.image_segmenter.samples import ResizedSegmentation
from effnet.image_segmenter.training import predict_labels, train_segmenter
from effnet.models.segmentation.spec import DEFAULT_SEGMENTER, SegmenterSpec, get_segmenter_spec
from effnet.runtime.segmentation import labels_at_size
from effnet.training.dense_hparams import resolve_hparams
from effnet.training.dense_task import RUN_FILES, DenseTaskModel, check_training_data, train_dense_run
from effnet.training.run_folder import CONFIG_FILE

__all__ = ["CONFIG_FILE", "FORMAT", "RUN_FILES", "ImageSegmenter", "create", "load"]

log = logging.getLogger(__name__)
FORMAT = "effnet.image_segmenter/1"


class ImageSegmenter(DenseTaskModel):
    """A trained segmenter: the network, its class names (index 0 first) and how it was trained."""

    FORMAT = FORMAT
    TASK = "segmenter"
    HPARAMS = SegmenterHParams
    DATA_TYPE = "image_segmenter.DataLoader (effnet.data.segmentation.SegmentationData)"
    DATA_LOADERS = "DataLoader.from_folder(images_dir, masks_dir)"

    @property
    def model_spec(self):
        return self.network.spec

    def __repr__(self) -> str:
        return (
            f"ImageSegmenter({self.network.name}, {self.num_classes} classes, input {self.input_size}, "
            f"output stride {self.network.spec.output_stride}, best epoch {self.best_epoch})"
        )

    # prediction and evaluation ------------------------------------------------------------------------------
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
        self._check_data(data)
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

    # exporting ---------------------------------------------------------------------------------------------
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

    def _run_config(self) -> dict:
        return {
            "spec": asdict(self.network.spec),  # the whole row: a custom SegmenterSpec rebuilds as trained
            "output_stride": self.network.spec.output_stride,
        }

    @classmethod
    def _rebuild(cls, config: dict, labels: list[str]) -> tuple[nn.Module, dict]:
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
        return network, {}


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
    """Load a segmenter written by `ImageSegmenter.save` (or ``effnet train`` of segmentation data): see
    `DenseTaskModel.load_run` for the errors of a damaged folder."""
    return ImageSegmenter.load_run(directory)


def _sample_identity(sample) -> list[bytes]:
    """What identifies a training sample for resuming: the paths and sizes of its image and mask files."""
    return [
        part
        for path in (sample.path, sample.mask_path)
        for part in (
            str(path).encode("utf-8", "surrogateescape"),
            str(path.stat().st_size if path.exists() else -1).encode(),
        )
    ]


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
    check_training_data(
        train_data, validation_data, ImageSegmenter.data_type_error, "check the images and masks folders"
    )
    spec = get_segmenter_spec(model_spec)
    given = {"epochs": epochs, "batch_size": batch_size}
    hp = resolve_hparams(
        SegmenterHParams, hparams, given, kwargs, train_whole_model, "effnet.image_segmenter.SegmenterHParams"
    )
    torch.manual_seed(hp.seed)
    network = _build_network(spec, len(train_data.label_names), pretrained, hp.input_size, hp.output_stride)
    hp = replace(hp, output_stride=network.spec.output_stride)
    segmenter = ImageSegmenter(network, train_data.label_names, hp)
    segmenter.train_data = train_data
    if not do_train:
        return segmenter
    identity = {"task": "image_segmenter", "model": asdict(network.spec), "pretrained": pretrained}
    return train_dense_run(
        segmenter, validation_data, model_dir, run_options, train_segmenter, identity, _sample_identity
    )
