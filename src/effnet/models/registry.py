"""Model names -> configs; `build_model`, the pure builder behind `effnet.create_model`; `list_models`;
and compound scaling of any member."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from effnet.models.families import CONFIGS
from effnet.models.families.iresnet import CONFIGS as IRESNET_CONFIGS
from effnet.models.families.iresnet import IResNetConfig, is_iresnet
from effnet.models.names import lookup, matching
from effnet.models.spec import ArchSpec, ModelConfig, arch_overrides

if TYPE_CHECKING:
    from effnet.models.network import EfficientNet

# IResNet (recognition baseline) is not built from a stage table: its own config and module class
_REGISTRY: dict[str, ModelConfig] = {config.name: config for config in (*CONFIGS, *IRESNET_CONFIGS)}
FAMILIES = tuple(dict.fromkeys(config.family for config in _REGISTRY.values()))


def list_models(pattern: str | None = None, family: str | None = None) -> list[str]:
    """Names of all models, optionally filtered by a shell-style ``pattern`` (``"*lite*"``) or family."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {list(FAMILIES)}")
    return matching((n for n, c in _REGISTRY.items() if family is None or c.family == family), pattern)


def get_config(name: str | ModelConfig) -> ModelConfig:
    """The config of a named model (a `ModelConfig` passes through)."""
    if isinstance(name, (ModelConfig, IResNetConfig)):
        return name
    return lookup(_REGISTRY, name, "model", "effnet.list_models()", suggestions=5)


def build_model(
    name: str | ModelConfig,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    padding: str | None = None,
    features_only: bool = False,
    **overrides: Any,
) -> EfficientNet:
    """Build a model of the family by name.

    Args:
        name: a name from `list_models()`, or a `ModelConfig` (for example from `scale` or `compound`).
        num_classes: classifier outputs; 0 gives the pooled backbone (``forward`` returns features).
        in_chans: input channels.
        drop_rate: dropout before the classifier (default: the model's).
        drop_path_rate: stochastic depth rate of the last block (default: the model's).
        padding: "symmetric" (PyTorch, the default) or "same" (TensorFlow SAME, needed by TF-trained weights).
        features_only: return the feature maps at strides 2, 4, 8, 16, 32 (`model.feature_info`).
        **overrides: any `ArchSpec` field (``act``, ``bn_eps``, ``se_gate``, ``width`` ...) or
            ``input_size`` (the default resolution that travels with the model).
    """
    config = get_config(name)
    input_size = overrides.pop("input_size", None)
    if is_iresnet(config):
        overrides.pop("bn_eps", None)  # IResNet keeps its own BatchNorm eps (1e-5)
        if overrides or features_only or (padding or "symmetric") != "symmetric":
            raise ValueError(
                f"{config.name}: IResNet takes no architecture overrides, padding or features_only"
            )
        from effnet.models.iresnet import IResNet

        return IResNet(config, num_classes, in_chans, drop_rate, input_size)
    if overrides:
        allowed = arch_overrides()
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise ValueError(
                f"create_model got unknown arguments {unknown}; architecture overrides are {list(allowed)}"
            )
        config = replace(config, arch=replace(config.arch, **overrides))
    if input_size is not None:
        config = replace(config, preprocessing=config.preprocessing.with_size(input_size))
    from effnet.models.network import EfficientNet

    return EfficientNet(
        config,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        padding=padding or "symmetric",
        features_only=features_only,
    )


def scale(
    base: str | ModelConfig,
    width: float = 1.0,
    depth: float = 1.0,
    resolution: float | int | None = None,
    name: str | None = None,
) -> ModelConfig:
    """A custom-scaled member of any family: multiply the base's width and depth coefficients.

    ``resolution`` is the new input size in pixels (an int), or a float multiplier of the base's size.
    The family's own rules still apply (channel rounding; Lite keeps its stem, head and first/last repeats).
    Scaling EfficientNet-B0 by B3's coefficients (width 1.2, depth 1.4, 300 px) gives B3 exactly.
    """
    config = get_config(base)
    if is_iresnet(config):
        raise ValueError(f"{config.name}: compound scaling applies to the EfficientNet/MobileNet family only")
    if width <= 0 or depth <= 0:
        raise ValueError(f"width and depth multipliers must be positive, got width={width}, depth={depth}")
    arch: ArchSpec = replace(config.arch, width=config.arch.width * width, depth=config.arch.depth * depth)
    size = config.resolution
    if isinstance(resolution, float):
        size = round(size * resolution)
    elif isinstance(resolution, int):
        size = resolution
    elif resolution is not None:
        raise ValueError(f"resolution must be an int (pixels) or a float (multiplier), got {resolution!r}")
    if size < 32:
        raise ValueError(f"resolution must be at least 32 px, got {size}")
    label = name or f"{config.name}-w{arch.width:g}-d{arch.depth:g}-r{size}"
    return replace(
        config,
        name=label,
        arch=arch,
        preprocessing=config.preprocessing.with_size(size),
        top1=None,
        macs=None,
    )


def compound(
    base: str | ModelConfig, phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15
) -> ModelConfig:
    """Compound scaling (EfficientNet paper, eq. 3): depth alpha**phi, width beta**phi, resolution
    gamma**phi, chosen so that FLOPs grow by about (alpha * beta**2 * gamma**2)**phi = 2**phi."""
    config = get_config(base)
    size = int(round(config.resolution * gamma**phi / 8) * 8)  # keep the size a multiple of 8
    return scale(config, width=beta**phi, depth=alpha**phi, resolution=size, name=f"{config.name}-phi{phi:g}")
