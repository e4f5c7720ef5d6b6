"""The model family: layers, blocks, stage tables, the builder and the registry (no I/O here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "EfficientNet": "effnet.models.network",
    "FeatureInfo": "effnet.models.network",
    "FAMILIES": "effnet.models.registry",
    "build_model": "effnet.models.registry",
    "compound": "effnet.models.registry",
    "get_config": "effnet.models.registry",
    "list_models": "effnet.models.registry",
    "scale": "effnet.models.registry",
    "is_iresnet": "effnet.models.families.iresnet",
    "ArchSpec": "effnet.models.spec",
    "BlockSpec": "effnet.models.spec",
    "ModelConfig": "effnet.models.spec",
    "round_channels": "effnet.models.spec",
    "round_repeats": "effnet.models.spec",
}

__all__ = [
    "FAMILIES",
    "ArchSpec",
    "BlockSpec",
    "EfficientNet",
    "FeatureInfo",
    "ModelConfig",
    "build_model",
    "compound",
    "get_config",
    "is_iresnet",
    "list_models",
    "round_channels",
    "round_repeats",
    "scale",
]

if TYPE_CHECKING:
    from effnet.models.families.iresnet import is_iresnet
    from effnet.models.network import EfficientNet, FeatureInfo
    from effnet.models.registry import FAMILIES, build_model, compound, get_config, list_models, scale
    from effnet.models.spec import ArchSpec, BlockSpec, ModelConfig, round_channels, round_repeats

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
