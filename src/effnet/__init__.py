"""effnet: efficient on-device image models.

    import effnet
    model = effnet.create_model("efficientnet_lite0", pretrained=True)

The names below load on first use (PEP 562), so ``import effnet.runtime`` (which runs exported files with
ONNX Runtime or LiteRT) and ``effnet.data`` work without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "effnet.factory",
    "create_embedder": "effnet.factory",
    "create_detector": "effnet.factory",
    "list_detectors": "effnet.models.detection",
    "create_segmenter": "effnet.factory",
    "list_segmenters": "effnet.models.segmentation",
    "FAMILIES": "effnet.models",
    "ArchSpec": "effnet.models",
    "BlockSpec": "effnet.models",
    "EfficientNet": "effnet.models",
    "ModelConfig": "effnet.models",
    "compound": "effnet.models",
    "get_config": "effnet.models",
    "list_models": "effnet.models",
    "scale": "effnet.models",
    "Preprocessing": "effnet.preprocessing",
    "count_params": "effnet.profiling",
    "profile": "effnet.profiling",
}

__all__ = [
    "FAMILIES",
    "ArchSpec",
    "BlockSpec",
    "EfficientNet",
    "ModelConfig",
    "Preprocessing",
    "__version__",
    "compound",
    "count_params",
    "create_detector",
    "create_embedder",
    "create_model",
    "create_segmenter",
    "get_config",
    "list_detectors",
    "list_models",
    "list_segmenters",
    "profile",
    "scale",
]

if TYPE_CHECKING:
    from effnet.factory import create_detector, create_embedder, create_model, create_segmenter
    from effnet.models import (
        FAMILIES,
        ArchSpec,
        BlockSpec,
        EfficientNet,
        ModelConfig,
        compound,
        get_config,
        list_models,
        scale,
    )
    from effnet.models.detection import list_detectors
    from effnet.models.segmentation import list_segmenters
    from effnet.preprocessing import Preprocessing
    from effnet.profiling import count_params, profile

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
