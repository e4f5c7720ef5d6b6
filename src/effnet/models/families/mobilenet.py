"""MobileNet V1 (Howard et al., 2017), V2 (Sandler et al., 2018) and V3 (Howard et al., 2019)."""

from __future__ import annotations

from dataclasses import replace

from effnet.models.spec import ArchSpec, BlockSpec, ModelConfig
from effnet.preprocessing import Preprocessing

# Columns: op, repeats, kernel, stride, expansion, output channels, SE ratio.
# V1: depthwise-separable convs with an activation after the pointwise conv and no residuals.
V1_STAGES = (
    (BlockSpec("ds", 1, 3, 1, 1, 64, pw_act=True, skip=False),),
    (BlockSpec("ds", 2, 3, 2, 1, 128, pw_act=True, skip=False),),
    (BlockSpec("ds", 2, 3, 2, 1, 256, pw_act=True, skip=False),),
    (BlockSpec("ds", 6, 3, 2, 1, 512, pw_act=True, skip=False),),
    (BlockSpec("ds", 2, 3, 2, 1, 1024, pw_act=True, skip=False),),
)
V2_STAGES = (  # paper Table 2
    (BlockSpec("ds", 1, 3, 1, 1, 16),),
    (BlockSpec("ir", 2, 3, 2, 6, 24),),
    (BlockSpec("ir", 3, 3, 2, 6, 32),),
    (BlockSpec("ir", 4, 3, 2, 6, 64),),
    (BlockSpec("ir", 3, 3, 1, 6, 96),),
    (BlockSpec("ir", 3, 3, 2, 6, 160),),
    (BlockSpec("ir", 1, 3, 1, 6, 320),),
)
# V3 paper Tables 1 and 2, one row per block where the expansion changes; ReLU in the early layers,
# hard-swish later; SE with a hard-sigmoid gate, sized from the expanded width.
V3_LARGE_STAGES = (
    (BlockSpec("ds", 1, 3, 1, 1, 16, act="relu"),),
    (BlockSpec("ir", 1, 3, 2, 4, 24, act="relu"), BlockSpec("ir", 1, 3, 1, 3, 24, act="relu")),
    (BlockSpec("ir", 3, 5, 2, 3, 40, se=0.25, act="relu"),),
    (BlockSpec("ir", 1, 3, 2, 6, 80), BlockSpec("ir", 1, 3, 1, 2.5, 80), BlockSpec("ir", 2, 3, 1, 2.3, 80)),
    (BlockSpec("ir", 2, 3, 1, 6, 112, se=0.25),),
    (BlockSpec("ir", 3, 5, 2, 6, 160, se=0.25),),
    (BlockSpec("conv", 1, 1, 1, 1, 960),),
)
V3_SMALL_STAGES = (
    (BlockSpec("ds", 1, 3, 2, 1, 16, se=0.25, act="relu"),),
    (BlockSpec("ir", 1, 3, 2, 4.5, 24, act="relu"), BlockSpec("ir", 1, 3, 1, 3.67, 24, act="relu")),
    (BlockSpec("ir", 1, 5, 2, 4, 40, se=0.25), BlockSpec("ir", 2, 5, 1, 6, 40, se=0.25)),
    (BlockSpec("ir", 2, 5, 1, 3, 48, se=0.25),),
    (BlockSpec("ir", 3, 5, 2, 6, 96, se=0.25),),
    (BlockSpec("conv", 1, 1, 1, 1, 576),),
)


def minimalistic(stages):
    """The 'minimalistic' V3: no SE, no hard-swish, no 5x5 kernels (ReLU and 3x3 only)."""
    return tuple(tuple(replace(r, se=0.0, act=None, kernel=min(r.kernel, 3)) for r in s) for s in stages)


MOBILENET_V1 = ArchSpec(
    stages=V1_STAGES, act="relu6", head_channels=0, dropout=0.2, drop_path=0.0, bn_eps=1e-5, bn_momentum=0.1
)
MOBILENET_V2 = ArchSpec(
    stages=V2_STAGES,
    act="relu6",
    head_scaling="grow",
    dropout=0.2,
    drop_path=0.0,
    bn_eps=1e-5,
    bn_momentum=0.1,
)
MOBILENET_V3 = ArchSpec(
    stages=V3_LARGE_STAGES,
    stem_channels=16,
    head="pool_conv",
    head_scaling="fixed",
    act="hard_swish",
    se_gate="hard_sigmoid",
    se_act="relu",
    se_from_expanded=True,
    dropout=0.2,
    drop_path=0.0,
    bn_eps=1e-3,
    bn_momentum=0.01,
)

# name: (arch, width, top-1, MACs) -- slim READMEs (TF checkpoints, 224 px)
VARIANTS = {
    "mobilenet_v1_025": ("mobilenet_v1", MOBILENET_V1, 0.25, 49.8, 41_000_000),
    "mobilenet_v1_050": ("mobilenet_v1", MOBILENET_V1, 0.5, 63.3, 150_000_000),
    "mobilenet_v1_075": ("mobilenet_v1", MOBILENET_V1, 0.75, 68.4, 317_000_000),
    "mobilenet_v1_100": ("mobilenet_v1", MOBILENET_V1, 1.0, 70.9, 569_000_000),
    "mobilenet_v2_050": ("mobilenet_v2", MOBILENET_V2, 0.5, 65.4, 97_000_000),
    "mobilenet_v2_075": ("mobilenet_v2", MOBILENET_V2, 0.75, 69.8, 209_000_000),
    "mobilenet_v2_100": ("mobilenet_v2", MOBILENET_V2, 1.0, 71.8, 300_000_000),
    "mobilenet_v2_140": ("mobilenet_v2", MOBILENET_V2, 1.4, 75.0, 582_000_000),
    "mobilenet_v3_large_075": ("mobilenet_v3", MOBILENET_V3, 0.75, 73.3, 155_000_000),
    "mobilenet_v3_large_100": ("mobilenet_v3", MOBILENET_V3, 1.0, 75.2, 217_000_000),
    "mobilenet_v3_small_075": (
        "mobilenet_v3",
        replace(MOBILENET_V3, stages=V3_SMALL_STAGES, head_channels=1024),
        0.75,
        65.4,
        44_000_000,
    ),
    "mobilenet_v3_small_100": (
        "mobilenet_v3",
        replace(MOBILENET_V3, stages=V3_SMALL_STAGES, head_channels=1024),
        1.0,
        67.5,
        66_000_000,
    ),
    "mobilenet_v3_large_minimal_100": (
        "mobilenet_v3",
        replace(MOBILENET_V3, stages=minimalistic(V3_LARGE_STAGES), act="relu", se_act=None),
        1.0,
        72.3,
        209_000_000,
    ),
    "mobilenet_v3_small_minimal_100": (
        "mobilenet_v3",
        replace(
            MOBILENET_V3, stages=minimalistic(V3_SMALL_STAGES), act="relu", se_act=None, head_channels=1024
        ),
        1.0,
        61.9,
        65_000_000,
    ),
}

PAPERS = {
    "mobilenet_v1": "arXiv:1704.04861",
    "mobilenet_v2": "arXiv:1801.04381",
    "mobilenet_v3": "arXiv:1905.02244",
}

CONFIGS = tuple(
    ModelConfig(
        name=name,
        family=family,
        arch=replace(arch, width=width),
        preprocessing=Preprocessing(input_size=224, crop_pct=0.875, interpolation="bilinear"),
        top1=top1,
        macs=macs,
        tf_same_padding=True,  # the reference accuracies are the TF-slim checkpoints'
        paper=PAPERS[family],
    )
    for name, (family, arch, width, top1, macs) in VARIANTS.items()
)
