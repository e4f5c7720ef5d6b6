"""Top-k classification of image files with a model and the preprocessing that travels with it; objects in
image files with an exported detector file (`detect_images`, `draw_detections`); label masks of an exported
segmenter drawn as colour overlays (`draw_segmentation`).

Importing this module imports no torch: predicting with an exported file does not need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effnet.data import imagenet_labels
from effnet.data.images import ImageDecodeError, ImageSource, load_image
from effnet.runtime.predictor import Prediction, Predictor

if TYPE_CHECKING:
    from torch import nn


@dataclass
class ImageResult:
    """The predictions for one image, or why it could not be read."""

    file: str
    predictions: list[Prediction] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        data = {"file": self.file, "predictions": [asdict(p) for p in self.predictions]}
        if self.error:
            data["error"] = self.error
        return data


def load_model(model: str | os.PathLike, weights: str | os.PathLike | None = None) -> nn.Module:
    """The network to predict with, its labels and preprocessing included.

    ``model``: a run folder written by `effnet train` or `ImageClassifier.save` (its trained head and class
    names), or a model name: then ``weights`` is a weights file whose classifier fits the model (1000
    ImageNet classes), or None for the model's published pretrained weights.

    Raises ValueError for a ``weights`` file whose classifier does not fit: its head would be dropped and
    predictions would come from a random one.
    """
    from effnet.factory import create_model

    if Path(model).is_dir():
        if weights is not None:
            raise ValueError(f"{model} is a run folder with its own weights; pass no weights file with it")
        from effnet.image_classifier import load

        return load(model).network
    if weights is None:
        return create_model(os.fspath(model), pretrained=True)
    network = create_model(os.fspath(model), weights=weights)
    report = network.weights_report
    if not report.classifier_loaded:
        classes = report.num_classes_in_weights
        found = f"a {classes}-class classifier" if classes else "no classifier"
        raise ValueError(
            f"{weights}: holds {found}, but {network.name} predicts {network.num_classes} classes, so its "
            "head would be random; for a model trained with effnet pass its run folder instead (--model "
            f"{Path(weights).parent})"
        )
    return network


def default_labels(model: nn.Module) -> list[str]:
    """ImageNet-1k class names for 1000-class models, else the class indexes."""
    num_classes = getattr(model, "num_classes", 0)
    labels = getattr(model, "labels", None)
    if labels:
        return list(labels)
    return imagenet_labels() if num_classes == 1000 else [str(i) for i in range(num_classes)]


def image_name(image: ImageSource, position: int) -> str:
    """How results name an image: its path, else its position in the input."""
    return str(image) if isinstance(image, str) or hasattr(image, "__fspath__") else f"image {position}"


def predict_images(
    model: nn.Module,
    images: Iterable[ImageSource],
    top_k: int = 5,
    labels: Sequence[str] | None = None,
    batch_size: int = 32,
    num_threads: int | None = None,
) -> list[ImageResult]:
    """Classify images (paths, PIL images or arrays); an unreadable file gets an error entry, the rest are
    still predicted. Uses ``model.preprocessing`` (the one its weights were evaluated with); batched and
    decoded in threads as `effnet.data.inference.probability_batches` says."""
    from effnet.data.inference import probability_batches

    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    labels = list(labels) if labels is not None else default_labels(model)
    items = list(images)
    results = [ImageResult(file=image_name(image, i)) for i, image in enumerate(items)]
    for batch, probabilities in probability_batches(model, items, batch_size, num_threads):
        for position, error in batch.failures:
            results[position].error = str(error)
        if probabilities is None:
            continue
        values, indexes = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        for position, row_values, row_indexes in zip(
            batch.positions, values.tolist(), indexes.tolist(), strict=True
        ):
            results[position].predictions = [
                Prediction(labels[i] if i < len(labels) else str(i), i, round(p, 6))
                for p, i in zip(row_values, row_indexes, strict=True)
            ]
    return results


# -- detection -------------------------------------------------------------------------------------------


@dataclass
class DetectionResult:
    """The objects found in one image (`effnet.runtime.Predictor.detect`'s dicts: box [xmin, ymin, xmax,
    ymax] in the image's pixels, label, index, score), or why it could not be read."""

    file: str
    detections: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"file": self.file, "detections": self.detections}
        if self.error:
            data["error"] = self.error
        return data


def detect_images(
    model: str | os.PathLike | Predictor,
    images: Iterable[ImageSource],
    score_threshold: float = 0.3,
    num_threads: int | None = None,
) -> list[DetectionResult]:
    """Objects in each image with an exported detector file (a path, or a loaded `effnet.runtime`
    predictor); an unreadable image gets an error entry, the others are still run."""
    from effnet.runtime import load

    predictor = model if isinstance(model, Predictor) else load(model, num_threads=num_threads)
    results = []
    for position, image in enumerate(images):
        result = DetectionResult(image_name(image, position))
        try:
            result.detections = predictor.detect(image, score_threshold=score_threshold)  # type: ignore[assignment]
        except ImageDecodeError as error:
            result.error = str(error)
        results.append(result)
    return results


_COLORS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))


def draw_detections(
    image: ImageSource, detections: Sequence[dict[str, Any]], path: str | os.PathLike
) -> Path:
    """Write ``image`` with each detection's box and "label score" drawn on it to ``path`` (the format from
    its suffix; written atomically); returns the path."""
    from PIL import ImageDraw

    from effnet.checkpoint import atomic_path

    picture = load_image(image).copy()
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(picture.size) / 300))
    for detection in detections:
        color = _COLORS[int(detection["index"]) % len(_COLORS)]
        xmin, ymin, xmax, ymax = detection["box"]
        draw.rectangle((xmin, ymin, xmax, ymax), outline=color, width=width)
        text = f"{detection['label']} {detection['score']:.2f}"
        left, top, right, bottom = draw.textbbox((xmin, ymin), text)
        lift = bottom - top + 2 if ymin >= bottom - top + 2 else 0  # above the box when there is room
        draw.rectangle((left, top - lift, right + 2, bottom - lift), fill=color)
        draw.text((xmin + 1, ymin - lift), text, fill=(255, 255, 255))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        picture.save(temporary, format=_image_format(target))
    return target


@dataclass
class SegmentationResult:
    """One image's label mask (uint8 class indices at the image's size) from an exported segmenter, or why
    it could not be read."""

    file: str
    labels: Any = None
    label_names: Sequence[str] | None = None
    error: str | None = None

    def classes(self) -> dict[str, float]:
        """The share of the image's pixels of each class found, largest first."""
        import numpy as np

        if self.labels is None:
            return {}
        counts = np.bincount(np.asarray(self.labels).reshape(-1), minlength=256)
        names = self.label_names or []
        found = {
            (names[i] if i < len(names) else str(i)): counts[i] / counts.sum() for i in np.flatnonzero(counts)
        }
        return dict(sorted(found.items(), key=lambda item: -item[1]))

    def to_dict(self) -> dict:
        data: dict[str, Any] = {
            "file": self.file,
            "classes": {k: float(v) for k, v in self.classes().items()},
        }
        if self.error:
            data["error"] = self.error
        return data


def draw_segmentation(image: ImageSource, labels: Any, path: str | os.PathLike) -> Path:
    """Write ``image`` with its label mask as a Pascal VOC colour overlay (the background left as it is) to
    ``path`` (written atomically); returns the path."""
    from effnet.checkpoint import atomic_path
    from effnet.runtime.segmentation import colour_overlay

    picture = colour_overlay(load_image(image), labels)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        picture.save(temporary, format=_image_format(target))
    return target


def _image_format(path: Path) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
