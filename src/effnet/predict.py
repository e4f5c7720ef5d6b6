"""Top-k classification of image files with a model and the preprocessing that travels with it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from effnet.data import ImageDecodeError, imagenet_labels, transforms_for
from effnet.data.images import ImageSource
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


def default_labels(model: nn.Module) -> list[str]:
    """ImageNet-1k class names for 1000-class models, else the class indexes."""
    num_classes = getattr(model, "num_classes", 0)
    labels = getattr(model, "labels", None)
    if labels:
        return list(labels)
    return imagenet_labels() if num_classes == 1000 else [str(i) for i in range(num_classes)]


def predict_images(
    model: nn.Module,
    images: Iterable[ImageSource],
    top_k: int = 5,
    labels: Sequence[str] | None = None,
    batch_size: int = 8,
) -> list[ImageResult]:
    """Classify images (paths, PIL images or arrays); an unreadable file gets an error entry, the rest are
    still predicted. Uses ``model.preprocessing`` (the one its weights were evaluated with)."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    labels = list(labels) if labels is not None else default_labels(model)
    transform = transforms_for(model)
    results: list[ImageResult] = []
    pending: list[tuple[ImageResult, np.ndarray]] = []
    model.eval()
    param = next(model.parameters())

    def flush() -> None:
        if not pending:
            return
        batch = torch.from_numpy(np.stack([array for _, array in pending])).to(param.device, param.dtype)
        with torch.inference_mode():
            probabilities = model(batch).float().softmax(dim=1)
        values, indexes = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        for (result, _), row_values, row_indexes in zip(
            pending, values.tolist(), indexes.tolist(), strict=True
        ):
            result.predictions = [
                Prediction(labels[i] if i < len(labels) else str(i), i, round(p, 6))
                for p, i in zip(row_values, row_indexes, strict=True)
            ]
        pending.clear()

    for position, image in enumerate(images):
        name = (
            str(image)
            if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__")
            else f"image {position}"
        )
        result = ImageResult(file=name)
        results.append(result)
        try:
            pending.append((result, transform(image)))
        except ImageDecodeError as error:
            result.error = str(error)
        if len(pending) == batch_size:
            flush()
    flush()
    return results
