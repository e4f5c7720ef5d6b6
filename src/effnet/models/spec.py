"""Architectures as data.

A family is a stage table (`BlockSpec` rows, read like the paper's table) plus an `ArchSpec` that says how
the family scales and which activation, squeeze-excite and BatchNorm conventions it uses. A `ModelConfig`
names one member: its architecture and what travels with it (preprocessing, reference accuracy, MACs).
The builder (`network.py`) turns any of these into a module; scaling rules are pure functions here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

from effnet.preprocessing import Preprocessing

BlockOp = Literal["ds", "ir", "fused", "conv"]
OPS = ("ds", "ir", "fused", "conv")
# the heads that turn a backbone's final map into an embedding (`effnet.models.embedding`)
EMBEDDING_HEADS = ("gap", "gdc", "flatten")


@dataclass(frozen=True)
class BlockSpec:
    """One row of a stage table: ``repeats`` blocks of one kind; the stride applies to the first.

    op: "ds" depthwise-separable (MBConv1 without expansion), "ir" inverted residual (MBConv),
        "fused" Fused-MBConv (the expansion is a full kxk conv), "conv" a plain conv + BN + act.
    expand: expansion ratio (hidden channels = input channels x expand).
    se: squeeze-excite ratio, 0 for none.
    act: this row's activation; None uses the model's.
    skip: add a residual connection where the shape allows (stride 1, same channels).
    pw_act: an activation after the pointwise projection (MobileNetV1); EfficientNets keep it linear.
    """

    op: BlockOp
    repeats: int
    kernel: int
    stride: int
    expand: float
    channels: int
    se: float = 0.0
    act: str | None = None
    skip: bool = True
    pw_act: bool = False

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown block op {self.op!r}; choose one of {OPS}")
        if self.repeats < 1 or self.kernel < 1 or self.stride not in (1, 2) or self.channels < 1:
            raise ValueError(f"invalid block spec {self}")


Stage = tuple[BlockSpec, ...]


@dataclass(frozen=True)
class ArchSpec:
    """How to build and scale one network from its stage table."""

    stages: tuple[Stage, ...]
    stem_channels: int = 32
    head_channels: int = 1280  # 0: no head conv, the last stage's output is the feature vector
    # "conv_bn": 1x1 conv + BN + act before pooling (EfficientNet, MobileNetV2);
    # "pool_conv": pool first, then a 1x1 conv with bias + act (MobileNetV3).
    head: Literal["conv_bn", "pool_conv"] = "conv_bn"
    width: float = 1.0
    depth: float = 1.0
    act: str = "silu"
    se_gate: str = "sigmoid"
    se_act: str | None = None  # None: the block's activation
    # EfficientNets size the squeeze from the block input; MobileNetV3 from the expanded channels,
    # rounded to a multiple of 8.
    se_from_expanded: bool = False
    divisor: int = 8
    round_limit: float = 0.9  # EfficientNetV2 drops the "no more than 10% down" rule (0.0)
    fix_stem: bool = False
    head_scaling: Literal["width", "fixed", "grow"] = "width"  # grow: max(head, scaled head)
    fix_first_last_repeats: bool = False  # EfficientNet-Lite
    dropout: float = 0.2
    drop_path: float = 0.2
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01

    @property
    def stem_width(self) -> int:
        if self.fix_stem:
            return self.stem_channels
        return round_channels(self.stem_channels, self.width, self.divisor, self.round_limit)

    @property
    def head_width(self) -> int:
        if self.head_channels == 0 or self.head_scaling == "fixed":
            return self.head_channels
        scaled = round_channels(self.head_channels, self.width, self.divisor, self.round_limit)
        return max(self.head_channels, scaled) if self.head_scaling == "grow" else scaled

    def scaled_stages(self) -> list[list[BlockSpec]]:
        """The stage table after width and depth scaling: concrete channels and repeats per row."""
        result = []
        last = len(self.stages) - 1
        for index, stage in enumerate(self.stages):
            fixed = self.fix_first_last_repeats and index in (0, last)
            rows = []
            for row in stage:
                channels = round_channels(row.channels, self.width, self.divisor, self.round_limit)
                repeats = row.repeats if fixed else round_repeats(row.repeats, self.depth)
                rows.append(replace(row, channels=channels, repeats=repeats))
            result.append(rows)
        return result


@dataclass(frozen=True)
class ModelConfig:
    """One named member of the family and the defaults that travel with it."""

    name: str
    family: str
    arch: ArchSpec
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    top1: float | None = None  # reference ImageNet-1k top-1 (%), from the paper or official repo
    macs: int | None = None  # reference multiply-adds at the default resolution
    tf_same_padding: bool = False  # the reference weights were trained in TF and need 'same' padding
    paper: str = ""

    @property
    def resolution(self) -> int:
        return self.preprocessing.input_size[0]


def round_channels(channels: float, width: float = 1.0, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Scale a channel count and round it to a multiple of ``divisor`` (TF ``round_filters``).

    Rounding to the nearest multiple may go down, but not by more than ``1 - round_limit`` (10% in
    EfficientNet V1 and MobileNets; EfficientNetV2 sets round_limit 0 and allows any rounding down).
    """
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < round_limit * scaled:
        rounded += divisor
    return rounded


def round_repeats(repeats: int, depth: float = 1.0) -> int:
    """Scale a stage's block count by the depth coefficient, rounding up (TF ``round_repeats``)."""
    return math.ceil(depth * repeats)


def arch_overrides() -> tuple[str, ...]:
    """Names of ArchSpec fields that ``build_model(**overrides)`` accepts."""
    return tuple(f.name for f in fields(ArchSpec) if f.name != "stages")


def config_to_dict(config: ModelConfig) -> dict:
    """A JSON-ready description of a model config (saved with trained models; `config_from_dict` inverts)."""
    data = asdict(config)
    data["preprocessing"] = config.preprocessing.to_dict()
    return data


def config_from_dict(data: dict) -> ModelConfig:
    arch = dict(data["arch"])
    arch["stages"] = tuple(tuple(BlockSpec(**row) for row in stage) for stage in arch["stages"])
    fields_ = {
        **data,
        "arch": ArchSpec(**arch),
        "preprocessing": Preprocessing.from_dict(data["preprocessing"]),
    }
    return ModelConfig(**fields_)
