"""The model family: layers, blocks, stage tables, the builder and the registry (no I/O here)."""

from effnet.models.network import EfficientNet, FeatureInfo
from effnet.models.registry import FAMILIES, build_model, compound, get_config, list_models, scale
from effnet.models.spec import ArchSpec, BlockSpec, ModelConfig, round_channels, round_repeats

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
    "list_models",
    "round_channels",
    "round_repeats",
    "scale",
]
