"""Top-k classification of image files with a model and the preprocessing that travels with it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from effnet.data import imagenet_labels
from effnet.data.images import ImageSource
from effnet.data.inference import probability_batches
from effnet.factory import create_model
from effnet.runtime.predictor import Prediction


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
