"""The Model Maker workflow: a folder of images in, a trained, evaluated, exported classifier out.

    from effnet import image_classifier
    from effnet.image_classifier import DataLoader
    data = DataLoader.from_folder("flower_photos/")
    train_data, test_data = data.split(0.9)
    model = image_classifier.create(train_data, model_spec="efficientnet_lite0")
    loss, accuracy = model.evaluate(test_data)
    model.export(export_dir="out/")

Code written for TFLite Model Maker runs after changing its import to ``from effnet import image_classifier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "DataLoader": "effnet.data.dataset:ImageDataset",
    "ImageClassifier": "effnet.image_classifier.classifier",
    "create": "effnet.image_classifier.classifier",
    "load": "effnet.image_classifier.classifier",
    "ExportFormat": "effnet.image_classifier.exporting",
    "RunOptions": "effnet.training.options",
    "HParams": "effnet.image_classifier.hparams",
    "ModelSpec": "effnet.image_classifier.model_spec",
    "PretrainedWeightsError": "effnet.weights.missing",
    "QuantizationConfig": "effnet.export.quantization",
}

__all__ = [
    "DataLoader",
    "ExportFormat",
    "HParams",
    "ImageClassifier",
    "ModelSpec",
    "PretrainedWeightsError",
    "QuantizationConfig",
    "RunOptions",
    "create",
    "load",
    "model_spec",
]

if TYPE_CHECKING:
    from effnet.data.dataset import ImageDataset as DataLoader
    from effnet.export.quantization import QuantizationConfig
    from effnet.image_classifier import model_spec
    from effnet.image_classifier.classifier import ImageClassifier, create, load
    from effnet.image_classifier.exporting import ExportFormat
    from effnet.image_classifier.hparams import HParams
    from effnet.image_classifier.model_spec import ModelSpec
    from effnet.training.options import RunOptions
    from effnet.weights.missing import PretrainedWeightsError

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
