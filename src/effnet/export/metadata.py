"""The `ModelMetadata` an export writes for a PyTorch model: its name, preprocessing and class names."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from effnet.data.labels import imagenet_labels
from effnet.runtime.metadata import ModelMetadata


def metadata_for(
    model: nn.Module, labels: Sequence[str] | None, input_layout: str, quantization: str
) -> ModelMetadata:
    """Labels: ``labels`` if given, else ``model.labels`` (set by the image classifier), else the ImageNet
    class names for a 1000-class model, else none (the runtime then names classes by index)."""
    num_classes = int(getattr(model, "num_classes", 0) or 0)
    if labels is None:
        labels = getattr(model, "labels", None) or (imagenet_labels() if num_classes == 1000 else None)
    if labels is not None:
        labels = [str(label) for label in labels]
        if num_classes and len(labels) != num_classes:
            raise ValueError(
                f"labels: got {len(labels)} names for a model with {num_classes} classes; pass one name per "
                "class, in class index order"
            )
    return ModelMetadata(
        model_name=str(getattr(model, "name", type(model).__name__)),
        preprocessing=model.preprocessing,
        labels=tuple(labels) if labels is not None else None,
        input_layout=input_layout,
        # a segmenter's export module says so (``export_output = "segmentation"``): per-pixel logits
        output=getattr(model, "export_output", None) or ("logits" if num_classes > 0 else "features"),
        quantization=quantization,
    )
