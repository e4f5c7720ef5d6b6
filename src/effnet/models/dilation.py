"""Output stride by dilation (DeepLab, Chen et al., 2017, Sec. 3.1 "atrous convolution for dense feature
extraction"): from the point where the network's stride would pass ``output_stride``, its strided convs run
at stride 1 and every kxk conv after them is dilated by the stride given up, so the receptive fields (and the
pretrained weights) stay as they were while the maps stay larger.

torchvision's ``mobilenet_v3_large(dilated=True)`` is this at output stride 16: its last stage's blocks run
at stride 1, dilation 2."""

from __future__ import annotations

from torch import nn

from effnet.models.layers import TFSameConv2d
from effnet.models.network import EfficientNet, FeatureInfo, FeatureInfoList

OUTPUT_STRIDES = (8, 16, 32)


def dilate(network: EfficientNet, output_stride: int) -> EfficientNet:
    """Make ``network`` (built by `effnet.models.build_model`) reduce its input by at most ``output_stride``
    (8, 16 or 32), in place; returns it. No parameter changes, so weights load before or after.
    ``network.feature_info`` gives the new reductions; ``network.output_stride`` the setting."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
    if not isinstance(network, EfficientNet):
        raise TypeError(f"dilate() takes an effnet EfficientNet, got {type(network).__name__}")
    reduction = network.stem.conv.stride[0]
    dilation = 1
    reductions = {"stem": reduction}
    for index, stage in enumerate(network.stages):
        for block in stage:
            convs = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
            stride = max((conv.stride[0] for conv in convs), default=1)
            if reduction * stride > output_stride:
                dilation *= stride  # this block and all after it: stride given up, receptive field kept
                stride = 1
            reduction *= stride
            for conv in convs:
                conv.stride = (min(conv.stride[0], stride),) * 2
                conv.dilation = (dilation, dilation)
                if not isinstance(conv, TFSameConv2d):  # TF SAME pads from the input and the dilation
                    conv.padding = (dilation * (conv.kernel_size[0] - 1) // 2,) * 2
        reductions[f"stages.{index}"] = reduction
    network.feature_info = FeatureInfoList(
        FeatureInfo(f.module, f.channels, reductions[f.module]) for f in network.feature_info
    )
    network.output_stride = output_stride
    return network
