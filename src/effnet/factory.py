"""`effnet.create_model`, `effnet.create_embedder`, `effnet.create_detector` and `effnet.create_segmenter`:
build a model of the family by name and, optionally, load pretrained weights into it."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from effnet.models import EfficientNet, ModelConfig, build_model, get_config
from effnet.models.detection.detector import Detector, build_detector, check_input_size
from effnet.models.detection.spec import DetectorSpec, get_detector_spec, list_detectors
from effnet.models.embedding import EmbeddingNet, attach_embedding_head
from effnet.models.families.iresnet import is_iresnet
from effnet.models.segmentation.segmenter import Segmenter, build_segmenter
from effnet.models.segmentation.segmenter import check_input_size as check_segmenter_size
from effnet.models.segmentation.spec import SegmenterSpec, get_segmenter_spec
from effnet.weights.convert import detect_naming, unwrap_checkpoint
from effnet.weights.load import Conventions, infer_conventions, load_weights, read_weights

log = logging.getLogger(__name__)


def create_model(
    name: str | ModelConfig,
    num_classes: int = 1000,
    in_chans: int = 3,
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    padding: str | None = None,
    features_only: bool = False,
    pretrained: bool | str = False,
    weights: str | Path | dict | None = None,
    **overrides: Any,
) -> EfficientNet:
    """Build a model of the family by name, optionally with pretrained weights.

    Args:
        name: a name from `effnet.list_models()`, or a `ModelConfig` (from `effnet.scale` or
            `effnet.compound`).
        num_classes: classifier outputs; 0 gives the pooled backbone. With weights of another class count,
            the backbone is loaded and the classifier starts fresh (transfer learning).
        in_chans: input channels (pretrained RGB stems are adapted).
        drop_rate: dropout before the classifier (default: the model's).
        drop_path_rate: stochastic depth rate of the last block (default: the model's).
        padding: "symmetric" (PyTorch) or "same" (TensorFlow SAME). Default: what the weights were trained
            with, else "symmetric".
        features_only: return the feature maps at strides 2, 4, 8, 16 and 32 (see ``model.feature_info``).
        pretrained: True for the model's default published weights (`effnet models` lists them; the Lite0-2
            and MobileNetV2 weights are bundled and work offline), or a weight tag.
        weights: a weights file (.pth/.pt/.bin/.safetensors) or state dict in effnet, timm, torchvision or
            efficientnet_pytorch naming; converted and checked strictly. For an ``iresnet*`` model, an
            insightface arcface_torch IResNet checkpoint (its embedding size and input size are taken from
            the file; see `effnet.weights.insightface`).
        **overrides: `ArchSpec` fields (``act``, ``bn_eps`` ...) or ``input_size``.

    The weights' conventions travel with them: loading TF-trained weights selects TF SAME padding and BN eps
    1e-3, and ``model.preprocessing`` becomes the preprocessing that reproduces their accuracy.
    """
    if pretrained and weights is not None:
        raise ValueError("pass either pretrained=True (published weights) or weights=PATH, not both")
    config = get_config(name)
    if is_iresnet(config) and weights is not None:
        return _iresnet_with_weights(config, weights, num_classes, in_chans, drop_rate, overrides)
    state, conventions = None, None
    if pretrained:
        from effnet.weights.hub import resolve_file
        from effnet.weights.published import get_weight_spec

        spec = get_weight_spec(config.name, pretrained if isinstance(pretrained, str) else None)
        path = resolve_file(spec)
        state, _ = read_weights(path)
        conventions = Conventions(spec.padding, spec.bn_eps, spec.preprocessing)
        source_label = f"{spec.model}.{spec.tag} ({path})"
    elif weights is not None:
        path = weights if isinstance(weights, (str, Path)) else None
        if path is not None:
            state, metadata = read_weights(path)
            source_label = str(path)
        else:
            state, metadata, source_label = unwrap_checkpoint(weights), {}, "a state dict"
        naming = detect_naming(state)
        conventions = infer_conventions(naming, config.name, path, metadata)
        if conventions.preprocessing is None:  # a known source's file: its published eval preprocessing
            from effnet.weights.published import weights_for

            known = [
                s for s in weights_for(config.name) if (s.naming, s.padding) == (naming, conventions.padding)
            ]
            if known:
                conventions = replace(conventions, preprocessing=known[0].preprocessing)
    if conventions is not None:
        if padding is None:
            padding = conventions.padding
        elif padding != conventions.padding:
            warnings.warn(
                f"{config.name}: the weights were trained with {conventions.padding!r} padding but padding="
                f"{padding!r} was requested; predictions will be shifted by a pixel at every strided layer",
                stacklevel=2,
            )
        overrides.setdefault("bn_eps", conventions.bn_eps)
    model = build_model(
        config,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        drop_path_rate=drop_path_rate,
        padding=padding,
        features_only=features_only,
        **overrides,
    )
    if state is not None:
        if conventions.preprocessing is not None:
            size = overrides.get("input_size")
            pre = conventions.preprocessing
            model.preprocessing = pre.with_size(size) if size is not None else pre
        report = load_weights(model, state)
        report.source = source_label
        model.weights_report = report
        log.info("%s: loaded %s", model.name, report)
    return model


def create_embedder(
    backbone: str | Any = "efficientnet_lite0",
    head: str = "gdc",
    embedding_dim: int = 512,
    input_size: int | tuple[int, int] = 112,
    dropout: float = 0.0,
    reduce_channels: int | None = None,
    pretrained: bool = False,
    head_bn_eps: float | None = None,
    **backbone_kwargs: Any,
) -> EmbeddingNet:
    """A recognition model: ``backbone`` (a name from `effnet.list_models()` or a built model with
    ``forward_features``) + an embedding ``head`` ("gap", "gdc" or "flatten") at ``input_size``.

    ``pretrained`` loads the backbone's published weights (the Lite0-2 weights are bundled). An IResNet
    backbone's own E head is dropped (its body ends at layer4) and replaced by ``head``; ``head="flatten"``
    rebuilds it exactly. ``head_bn_eps``: see `effnet.models.embedding.attach_embedding_head`.
    """
    if isinstance(backbone, str):
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        backbone = create_model(
            backbone, num_classes=0, pretrained=pretrained, input_size=size, **backbone_kwargs
        )
    return attach_embedding_head(
        backbone, head, embedding_dim, input_size, dropout, reduce_channels, head_bn_eps
    )


def create_detector(
    name: str | DetectorSpec,
    num_classes: int,
    pretrained_backbone: bool = True,
    input_size: int | None = None,
) -> Detector:
    """A detector by name (`effnet.list_detectors()`) for ``num_classes`` classes at a square ``input_size``
    (default: the detector's).

    ``pretrained_backbone`` loads the backbone's ImageNet weights (`create_model(..., pretrained=True)`: the
    EfficientNet-Lite0-2 and MobileNetV2 weights are bundled and work offline); the neck and head start from
    random weights. Weights that cannot be had raise `effnet.weights.missing.PretrainedWeightsError`; pass
    ``pretrained_backbone=False`` to start the whole detector from random weights.
    """
    from effnet.weights.missing import PretrainedWeightsError, missing_weights_message

    spec = get_detector_spec(name)
    size = check_input_size(spec, spec.input_size if input_size is None else input_size)
    if not pretrained_backbone:
        return build_detector(spec, num_classes, size)
    scratch = "effnet.create_detector(..., pretrained_backbone=False)"
    if spec.reduced_tail:
        from effnet.weights.published import BUNDLED

        bundled = {s.model for s in BUNDLED}
        offline = [n for n in list_detectors() if get_detector_spec(n).backbone in bundled]
        raise PretrainedWeightsError(
            f"{spec.name}: its backbone {spec.backbone} has the reduced last stage of torchvision's SSDLite "
            "layout, which no ImageNet weights fit; pick a detector whose backbone weights are bundled "
            f"({', '.join(offline)}), or start from random weights: {scratch}"
        )
    try:
        backbone = create_model(spec.backbone, pretrained=True, features_only=True, input_size=size)
    except (FileNotFoundError, ValueError) as error:
        consequence = "the detector would start from a random backbone"
        message = missing_weights_message(spec.name, spec.backbone, error, consequence, scratch)
        raise PretrainedWeightsError(message) from None
    log.info("%s: backbone from %s", spec.name, backbone.weights_report)
    return Detector(spec, num_classes, backbone, size)


def create_segmenter(
    name: str | SegmenterSpec,
    num_classes: int,
    pretrained_backbone: bool = True,
    input_size: int | None = None,
    output_stride: int | None = None,
) -> Segmenter:
    """A segmenter by name (`effnet.list_segmenters()`) for ``num_classes`` classes (the background
    included) at a square ``input_size`` (default: the segmenter's), with its backbone at ``output_stride``
    (8, 16 or 32; default: the spec's 16).

    ``pretrained_backbone`` loads the backbone's ImageNet weights (the EfficientNet-Lite0-2 and MobileNetV2
    weights are bundled and work offline); the head starts from random weights. Weights that cannot be had
    raise `effnet.weights.missing.PretrainedWeightsError`; ``pretrained_backbone=False`` starts the whole
    segmenter from random weights.
    """
    from effnet.weights.missing import PretrainedWeightsError, missing_weights_message

    spec = get_segmenter_spec(name)
    if output_stride is not None:
        spec = replace(spec, output_stride=output_stride)
    size = check_segmenter_size(spec, spec.input_size if input_size is None else input_size)
    if not pretrained_backbone:
        return build_segmenter(spec, num_classes, size)
    try:
        backbone = create_model(spec.backbone, pretrained=True, features_only=True, input_size=size)
    except (FileNotFoundError, ValueError) as error:
        consequence = "the segmenter would start from a random backbone"
        scratch = "effnet.create_segmenter(..., pretrained_backbone=False)"
        message = missing_weights_message(spec.name, spec.backbone, error, consequence, scratch)
        raise PretrainedWeightsError(message) from None
    log.info("%s: backbone from %s", spec.name, backbone.weights_report)
    return Segmenter(spec, num_classes, backbone, size)


def _iresnet_with_weights(config, weights, num_classes, in_chans, drop_rate, overrides) -> Any:
    """An IResNet with the weights of an insightface arcface_torch (or effnet) IResNet checkpoint."""
    from effnet.weights.insightface import load_iresnet_weights, read_iresnet_weights
    from effnet.weights.load import LoadReport

    if isinstance(weights, (str, Path)):
        state, _ = read_weights(weights)
        label = str(weights)
    else:
        state, label = weights, "the state dict passed as weights="
    found = read_iresnet_weights(state, label)
    config = replace(config, embedding_dim=found.embedding_dim)
    overrides.setdefault("input_size", found.input_size)
    model = build_model(config, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **overrides)
    load_iresnet_weights(model, found, label)
    model.weights_report = LoadReport(label, found.naming, False, 0)
    log.info("%s: loaded %s", model.name, model.weights_report)
    return model
