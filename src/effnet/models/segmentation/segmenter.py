"""The one segmenter class: backbone features (last stage dilated) -> head -> logits at the input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effnet.models.dense_network import DenseNetwork, check_input_size
from effnet.models.dilation import dilate
from effnet.models.network import EfficientNet
from effnet.models.registry import build_model
from effnet.models.segmentation.heads import DeepLabV3Head, LRASPPHead
from effnet.models.segmentation.spec import SegmenterSpec, get_segmenter_spec


class Segmenter(DenseNetwork):
    """Per-pixel class logits: ``forward(images [N, 3, H, W]) -> [N, num_classes, H, W]`` (bilinear upsampling
    of the head's stride-8 or stride-16 logits, as torchvision's segmentation models do).

    Use `effnet.create_segmenter` (backbone ImageNet weights) or `build_segmenter` (random weights).
    ``backbone_features`` and ``forward_from_features`` split the forward pass, so that a frozen backbone's
    maps can be computed once and the head trained on them."""

    def __init__(
        self, spec: SegmenterSpec, num_classes: int, backbone: EfficientNet, input_size: int
    ) -> None:
        super().__init__(spec, num_classes, backbone, input_size)
        dilate(self.backbone, spec.output_stride)  # in place
        info = backbone.feature_info
        self.low_index = next(i for i, f in enumerate(info) if f.reduction == spec.low_level_stride)
        low, high = info[self.low_index].channels, info[-1].channels
        if spec.head == "lraspp":
            self.head: nn.Module = LRASPPHead(low, high, num_classes, spec.head_channels)
        else:
            self.head = DeepLabV3Head(high, num_classes, spec.head_channels, spec.atrous_rates)

    def backbone_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[low-level map (stride 8), last map (the output stride)]."""
        maps = self.backbone(images)
        return [maps[self.low_index], maps[-1]]

    def forward_from_features(
        self, features: list[torch.Tensor], size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Logits at ``size`` (default: the square ``input_size``) from `backbone_features`."""
        logits = self.head(*features)
        size = (self.input_size, self.input_size) if size is None else size
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_from_features(self.backbone_features(images), images.shape[-2:])

    def extra_repr(self) -> str:
        return (
            f"name={self.name}, num_classes={self.num_classes}, input_size={self.input_size}, "
            f"output_stride={self.spec.output_stride}"
        )


def build_segmenter(
    name: str | SegmenterSpec,
    num_classes: int,
    input_size: int | None = None,
    output_stride: int | None = None,
    **backbone_kwargs,
) -> Segmenter:
    """A segmenter by name (`list_segmenters()`), with random weights, for ``num_classes`` classes at a square
    ``input_size`` (default: the spec's), at ``output_stride`` (8, 16 or 32; default: the spec's).
    ``backbone_kwargs`` go to `effnet.models.build_model` (``padding``, ``bn_eps``)."""
    spec = get_segmenter_spec(name)
    if output_stride is not None:
        from dataclasses import replace

        spec = replace(spec, output_stride=output_stride)
    size = check_input_size(spec, spec.input_size if input_size is None else input_size)
    backbone = build_model(spec.backbone, features_only=True, input_size=size, **backbone_kwargs)
    return Segmenter(spec, num_classes, backbone, size)
