"""EfficientNetV2 (Tan & Le, 2021): Fused-MBConv early, smaller expansion, no 10% rounding rule."""

from __future__ import annotations

from dataclasses import replace

from effnet.models.spec import ArchSpec, BlockSpec, ModelConfig
from effnet.preprocessing import V2_MEAN, V2_STD, Preprocessing, tf_crop_pct

# Columns: op, repeats, kernel, stride, expansion, output channels, SE ratio. Every kernel is 3x3.
V2_BASE_STAGES = (  # V2-B0, scaled to B1-B3
    (BlockSpec("conv", 1, 3, 1, 1, 16),),
    (BlockSpec("fused", 2, 3, 2, 4, 32),),
    (BlockSpec("fused", 2, 3, 2, 4, 48),),
    (BlockSpec("ir", 3, 3, 2, 4, 96, se=0.25),),
    (BlockSpec("ir", 5, 3, 1, 6, 112, se=0.25),),
    (BlockSpec("ir", 8, 3, 2, 6, 192, se=0.25),),
)
V2_S_STAGES = (  # paper Table 4
    (BlockSpec("conv", 2, 3, 1, 1, 24),),
    (BlockSpec("fused", 4, 3, 2, 4, 48),),
    (BlockSpec("fused", 4, 3, 2, 4, 64),),
    (BlockSpec("ir", 6, 3, 2, 4, 128, se=0.25),),
    (BlockSpec("ir", 9, 3, 1, 6, 160, se=0.25),),
    (BlockSpec("ir", 15, 3, 2, 6, 256, se=0.25),),
)
V2_M_STAGES = (
    (BlockSpec("conv", 3, 3, 1, 1, 24),),
    (BlockSpec("fused", 5, 3, 2, 4, 48),),
    (BlockSpec("fused", 5, 3, 2, 4, 80),),
    (BlockSpec("ir", 7, 3, 2, 4, 160, se=0.25),),
    (BlockSpec("ir", 14, 3, 1, 6, 176, se=0.25),),
    (BlockSpec("ir", 18, 3, 2, 6, 304, se=0.25),),
    (BlockSpec("ir", 5, 3, 1, 6, 512, se=0.25),),
)
V2_L_STAGES = (
    (BlockSpec("conv", 4, 3, 1, 1, 32),),
    (BlockSpec("fused", 7, 3, 2, 4, 64),),
    (BlockSpec("fused", 7, 3, 2, 4, 96),),
    (BlockSpec("ir", 10, 3, 2, 4, 192, se=0.25),),
    (BlockSpec("ir", 19, 3, 1, 6, 224, se=0.25),),
    (BlockSpec("ir", 25, 3, 2, 6, 384, se=0.25),),
    (BlockSpec("ir", 7, 3, 1, 6, 640, se=0.25),),
)

# BN decay 0.9 in TF (PyTorch momentum 0.1), eps 1e-3; channel rounding without the 10% rule.
EFFICIENTNET_V2 = ArchSpec(
    stages=V2_BASE_STAGES, act="silu", round_limit=0.0, bn_eps=1e-3, bn_momentum=0.1, drop_path=0.2
)

# name: (stages, stem, width, depth, eval resolution, dropout, top-1, MACs) from google/automl efficientnetv2
VARIANTS = {
    "efficientnet_v2_b0": (V2_BASE_STAGES, 32, 1.0, 1.0, 224, 0.2, 78.7, 720_000_000),
    "efficientnet_v2_b1": (V2_BASE_STAGES, 32, 1.0, 1.1, 240, 0.2, 79.8, 1_200_000_000),
    "efficientnet_v2_b2": (V2_BASE_STAGES, 32, 1.1, 1.2, 260, 0.3, 80.5, 1_700_000_000),
    "efficientnet_v2_b3": (V2_BASE_STAGES, 32, 1.2, 1.4, 300, 0.3, 82.1, 3_000_000_000),
    "efficientnet_v2_s": (V2_S_STAGES, 24, 1.0, 1.0, 384, 0.2, 83.9, 8_400_000_000),
    "efficientnet_v2_m": (V2_M_STAGES, 24, 1.0, 1.0, 480, 0.3, 85.2, 24_700_000_000),
    "efficientnet_v2_l": (V2_L_STAGES, 32, 1.0, 1.0, 480, 0.4, 85.7, 56_300_000_000),
}


def _preprocessing(name: str, res: int) -> Preprocessing:
    if name.endswith(("_s", "_m", "_l")):
        # S/M/L evaluate on the full image at (x - 128) / 128
        return Preprocessing(input_size=res, mean=V2_MEAN, std=V2_STD, crop_pct=1.0, interpolation="bilinear")
    return Preprocessing(input_size=res, crop_pct=tf_crop_pct(res), interpolation="bicubic")


CONFIGS = tuple(
    ModelConfig(
        name=name,
        family="efficientnet_v2",
        arch=replace(EFFICIENTNET_V2, stages=stages, stem_channels=stem, width=w, depth=d, dropout=dropout),
        preprocessing=_preprocessing(name, res),
        top1=top1,
        macs=macs,
        tf_same_padding=True,
        paper="arXiv:2104.00298",
    )
    for name, (stages, stem, w, d, res, dropout, top1, macs) in VARIANTS.items()
)
