"""EfficientNet B0-B7 (+ B8, L2) and EfficientNet-Lite0-4 (Tan & Le, 2019; the TF `lite/` builder)."""

from __future__ import annotations

from dataclasses import replace

from effnet.models.spec import ArchSpec, BlockSpec, ModelConfig
from effnet.preprocessing import LITE_MEAN, LITE_STD, Preprocessing, tf_crop_pct

# Paper Table 1 (B0). Columns: op, repeats, kernel, stride, expansion, output channels, SE ratio.
B0_STAGES = (
    (BlockSpec("ds", 1, 3, 1, 1, 16, se=0.25),),  # MBConv1, k3x3
    (BlockSpec("ir", 2, 3, 2, 6, 24, se=0.25),),  # MBConv6, k3x3
    (BlockSpec("ir", 2, 5, 2, 6, 40, se=0.25),),  # MBConv6, k5x5
    (BlockSpec("ir", 3, 3, 2, 6, 80, se=0.25),),  # MBConv6, k3x3
    (BlockSpec("ir", 3, 5, 1, 6, 112, se=0.25),),  # MBConv6, k5x5
    (BlockSpec("ir", 4, 5, 2, 6, 192, se=0.25),),  # MBConv6, k5x5
    (BlockSpec("ir", 1, 3, 1, 6, 320, se=0.25),),  # MBConv6, k3x3
)
# Lite: the same table without squeeze-excite (poorly supported by mobile accelerators, hard to quantize).
LITE_STAGES = tuple(tuple(replace(row, se=0.0) for row in stage) for stage in B0_STAGES)

# TF `efficientnet_params`: (width, depth, resolution, dropout); reference top-1 (paper v5) and MACs.
SCALING = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2, 77.1, 390_000_000),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2, 79.1, 700_000_000),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3, 80.1, 1_000_000_000),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3, 81.6, 1_800_000_000),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4, 82.9, 4_200_000_000),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4, 83.6, 9_900_000_000),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5, 84.0, 19_000_000_000),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5, 84.3, 37_000_000_000),
    "efficientnet_b8": (2.2, 3.6, 672, 0.5, None, None),
    "efficientnet_l2": (4.3, 5.3, 800, 0.5, None, None),
}
# TF lite/README: FP32 top-1 and MACs. Lite keeps stem 32, head 1280 and the first and last repeats fixed.
LITE_SCALING = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2, 75.1, 407_000_000),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2, 76.7, 631_000_000),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3, 77.6, 899_000_000),
    "efficientnet_lite3": (1.2, 1.4, 280, 0.3, 79.8, 1_440_000_000),
    "efficientnet_lite4": (1.4, 1.8, 300, 0.3, 81.5, 2_640_000_000),
}

# swish, SE from the block input, BN decay 0.99 / eps 1e-3 (TF), drop-connect 0.2.
EFFICIENTNET = ArchSpec(stages=B0_STAGES, act="silu", drop_path=0.2, bn_eps=1e-3, bn_momentum=0.01)
EFFICIENTNET_LITE = replace(
    EFFICIENTNET,
    stages=LITE_STAGES,
    act="relu6",  # ReLU6 instead of swish: bounded activations survive int8 quantization
    fix_stem=True,
    head_scaling="fixed",
    fix_first_last_repeats=True,
)


def _configs():
    for name, (width, depth, res, dropout, top1, macs) in SCALING.items():
        yield ModelConfig(
            name=name,
            family="efficientnet",
            arch=replace(EFFICIENTNET, width=width, depth=depth, dropout=dropout),
            preprocessing=Preprocessing(input_size=res, crop_pct=tf_crop_pct(res), interpolation="bicubic"),
            top1=top1,
            macs=macs,
            tf_same_padding=True,
            paper="arXiv:1905.11946",
        )
    for name, (width, depth, res, dropout, top1, macs) in LITE_SCALING.items():
        yield ModelConfig(
            name=name,
            family="efficientnet_lite",
            arch=replace(EFFICIENTNET_LITE, width=width, depth=depth, dropout=dropout),
            preprocessing=Preprocessing(
                input_size=res,
                mean=LITE_MEAN,
                std=LITE_STD,
                crop_pct=tf_crop_pct(res),
                interpolation="bicubic",
            ),
            top1=top1,
            macs=macs,
            tf_same_padding=True,
            paper="tensorflow/tpu efficientnet/lite",
        )


CONFIGS = tuple(_configs())
