"""The one detector class: backbone features -> neck -> class / box predictions per anchor.

EfficientDet-Lite (neck: BiFPN, head: shared separable-conv nets) and SSDLite (neck: extra blocks, head:
one depthwise-separable predictor per map) are this module built from different `DetectorSpec` rows."""

from __future__ import annotations

import torch
from torch import nn

from effnet.models.dense_network import DenseNetwork, check_input_size
from effnet.models.detection.anchors import AnchorGrid, anchor_boxes
from effnet.models.detection.efficientdet import BiFPN, EfficientDetHead
from effnet.models.detection.spec import DetectorSpec, get_detector_spec
from effnet.models.detection.ssdlite import SSDLiteExtras, SSDLiteHead, reduce_tail, split_stage
from effnet.models.network import EfficientNet
from effnet.models.registry import build_model, get_config


def backbone_config(spec: DetectorSpec):
    """The `ModelConfig` of the detector's backbone (with the reduced tail where the spec asks for it)."""
    config = get_config(spec.backbone)
    return reduce_tail(config) if spec.reduced_tail else config


class Detector(DenseNetwork):
    """An anchor-based single-shot detector: ``forward(images)`` gives per-anchor class logits [N, A, C]
    (per-class sigmoid, no background class) and box deltas [N, A, 4] relative to `anchor_boxes()`
    (`effnet.models.detection.boxes.decode` with ``spec.box_coder_weights`` turns them into boxes).

    Anchors and predictions share one order: levels finest to coarsest, locations row-major (y, then x),
    then the anchors of a location (EfficientDet: scale-major then aspect ratio; SSDLite: s_k, s'_k, then
    each aspect ratio and its inverse).

    Use `effnet.create_detector` (backbone ImageNet weights) or `build_detector` (random weights).
    """

    def __init__(self, spec: DetectorSpec, num_classes: int, backbone: EfficientNet, input_size: int) -> None:
        super().__init__(spec, num_classes, backbone, input_size)
        anchors = spec.anchors.per_location
        self.split = -1  # SSDLite: the backbone stage whose first block's expansion is the first map
        if spec.architecture == "efficientdet":
            in_channels = backbone.feature_info.channels()[spec.min_level - 1 : 5]
            self.neck: nn.Module = BiFPN(
                in_channels,
                spec.neck_channels,
                spec.neck_repeats,
                spec.min_level,
                spec.max_level,
                spec.fusion,
                spec.act,
            )
            self.head: nn.Module = EfficientDetHead(
                spec.neck_channels, num_classes, anchors, spec.head_repeats, spec.num_levels, spec.act
            )
        else:
            self.split = split_stage(backbone.stages)
            expanded = backbone.stages[self.split][0].expand.conv.out_channels
            final = backbone.feature_info[-1].channels
            self.neck = SSDLiteExtras(final, spec.extra_channels)
            self.head = SSDLiteHead([expanded, final, *spec.extra_channels], num_classes, anchors)
        self.register_buffer("anchors", anchor_boxes(spec, input_size), persistent=False)

    def anchor_boxes(self) -> torch.Tensor:
        """[A, 4] (xmin, ymin, xmax, ymax) pixels at ``input_size``, in the order of the predictions."""
        return self.anchors

    def anchor_grid(self) -> AnchorGrid:
        """The same anchors computed from their indices (what post-processing and detector files use)."""
        return AnchorGrid(self.spec, self.input_size).to(self.anchors.device)

    def check_input(self, images: torch.Tensor) -> None:
        expected = (self.backbone.in_chans, self.input_size, self.input_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"{self.name} expects images of shape (N, {', '.join(map(str, expected))}), got "
                f"{tuple(images.shape)}; resize them to {self.input_size} px (detector.preprocessing), or "
                f"build the detector with input_size={images.shape[-1]}"
            )

    def backbone_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The backbone maps the neck uses (EfficientDet: strides 8, 16, 32; SSDLite: the expansion inside
        the last stride-2 block, and the final map)."""
        if not (torch.compiler.is_compiling() or torch.jit.is_tracing()):  # shapes are fixed in an export
            self.check_input(images)
        backbone = self.backbone
        if self.spec.architecture == "efficientdet":
            return backbone.forward_intermediates(images)[self.spec.min_level - 1 :]
        x = backbone.stem(images)
        for index, stage in enumerate(backbone.stages):
            if index != self.split:
                x = stage(x)
                continue
            block = stage[0]  # stride 2: no residual
            expanded = block.expand(x)
            x = stage[1:](block.project(block.se(block.dw(expanded))))
        return [expanded, x]

    def forward_from_features(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits [N, A, C], box deltas [N, A, 4]) from `backbone_features`."""
        class_maps, box_maps = self.head(self.neck(features))
        return _flatten(class_maps, self.num_classes), _flatten(box_maps, 4)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_from_features(self.backbone_features(images))

    def extra_repr(self) -> str:
        return f"name={self.name}, num_classes={self.num_classes}, input_size={self.input_size}"


def _flatten(maps: list[torch.Tensor], values: int) -> torch.Tensor:
    """[N, anchors * values, H, W] per level -> [N, sum(H * W * anchors), values] in anchor order."""
    out = []
    for x in maps:
        n, _, h, w = x.shape
        out.append(x.view(n, -1, values, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, values))
    return torch.cat(out, dim=1)


def build_detector(
    name: str | DetectorSpec, num_classes: int, input_size: int | None = None, **backbone_kwargs
) -> Detector:
    """A detector by name (`list_detectors()`), with random weights, for ``num_classes`` classes at a square
    ``input_size`` (default: the spec's). ``backbone_kwargs`` go to `effnet.models.build_model`
    (``padding``, ``bn_eps``)."""
    spec = get_detector_spec(name)
    size = check_input_size(spec, spec.input_size if input_size is None else input_size)
    backbone = build_model(backbone_config(spec), features_only=True, input_size=size, **backbone_kwargs)
    return Detector(spec, num_classes, backbone, size)
