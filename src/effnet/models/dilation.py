"""Output stride by dilation (DeepLab, Chen et al., 2017, Sec. 3.1 "atrous convolution for dense feature
extraction"): from the point where the network's stride would pass ``output_stride``, its strided convs run
at stride 1 and every kxk conv after them is dilated by the stride given up, so the receptive fields (and the
pretrained weights) stay as they were while the maps stay larger.

The block that gives up its stride keeps the dilation it had, and the blocks after it get the new one, as in
TF DeepLab's ``resnet_utils.stack_blocks_dense`` and timm's builder: then the dilated network computes exactly
the original's maps, at every ``stride``-th position of its larger ones (the a trous algorithm; squeeze-excite
pools over all positions, so networks with it are close, not exact). torchvision's
``mobilenet_v3_large(dilated=True)`` dilates that block's depthwise conv too; the parameters are the same."""

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
            block_dilation = dilation
            if reduction * stride > output_stride:
                dilation *= stride  # the blocks after this one: stride given up, receptive field kept
                stride = 1
            reduction *= stride
            for conv in convs:
                conv.stride = (min(conv.stride[0], stride),) * 2
                conv.dilation = (block_dilation, block_dilation)
                if not isinstance(conv, TFSameConv2d):  # TF SAME pads from the input and the dilation
                    conv.padding = (block_dilation * (conv.kernel_size[0] - 1) // 2,) * 2
        reductions[f"stages.{index}"] = reduction
    network.feature_info = FeatureInfoList(
        FeatureInfo(f.module, f.channels, reductions[f.module]) for f in network.feature_info
    )
    network.output_stride = output_stride
    return network
