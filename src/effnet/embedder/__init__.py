"""Recognition: train a backbone + embedding head so that images of one identity (a face, a person, a
product) land close together, also for identities never seen in training; verify and identify; export.

    from effnet import embedder
    from effnet.image_classifier import DataLoader
    train = DataLoader.from_folder("identities/")          # one sub-folder per identity
    model = embedder.create(train, backbone="efficientnet_lite0", head="gdc", loss="arcface",
                            embedding_dim=512, input_size=112, epochs=10)
    metrics = embedder.evaluate_verification(model, "lfw/pairs.txt")   # or held-out identities
    model.export("out/", quantization="int8", representative_data=train)

    r50 = embedder.load_insightface("backbone.pth")       # an insightface arcface_torch IResNet checkpoint
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "LOSSES": "effnet.embedder.hparams",
    "EmbedderHParams": "effnet.embedder.hparams",
    "load_insightface": "effnet.embedder.insightface",
    "MarginLoss": "effnet.embedder.losses",
    "SoftmaxLoss": "effnet.embedder.losses",
    "make_loss": "effnet.embedder.losses",
    "margin_fraction": "effnet.embedder.losses",
    "identification": "effnet.embedder.metrics",
    "verification_metrics": "effnet.embedder.metrics",
    "Embedder": "effnet.embedder.model",
    "as_pairs": "effnet.embedder.model",
    "create": "effnet.embedder.model",
    "evaluate_verification": "effnet.embedder.model",
    "load": "effnet.embedder.model",
    "Pairs": "effnet.embedder.pairs",
    "read_csv_pairs": "effnet.embedder.pairs",
    "read_lfw_pairs": "effnet.embedder.pairs",
    "sample_pairs": "effnet.embedder.pairs",
}

__all__ = [
    "LOSSES",
    "Embedder",
    "EmbedderHParams",
    "MarginLoss",
    "Pairs",
    "SoftmaxLoss",
    "as_pairs",
    "create",
    "evaluate_verification",
    "identification",
    "load",
    "load_insightface",
    "make_loss",
    "margin_fraction",
    "read_csv_pairs",
    "read_lfw_pairs",
    "sample_pairs",
    "verification_metrics",
]

if TYPE_CHECKING:
    from effnet.embedder.hparams import LOSSES, EmbedderHParams
    from effnet.embedder.insightface import load_insightface
    from effnet.embedder.losses import MarginLoss, SoftmaxLoss, make_loss, margin_fraction
    from effnet.embedder.metrics import identification, verification_metrics
    from effnet.embedder.model import Embedder, as_pairs, create, evaluate_verification, load
    from effnet.embedder.pairs import Pairs, read_csv_pairs, read_lfw_pairs, sample_pairs

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
