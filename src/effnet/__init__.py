"""effnet: efficient on-device image models.

import effnet
model = effnet.create_model("efficientnet_lite0", num_classes=10)
"""

from effnet.factory import create_model
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
from effnet.preprocessing import Preprocessing
from effnet.profile import count_params, profile

__version__ = "0.1.0"

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
    "create_model",
    "get_config",
    "list_models",
    "profile",
    "scale",
]
