"""Migrating from insightface: an arcface_torch IResNet checkpoint as an `Embedder` (verify, identify,
export to ONNX / LiteRT / int8, save as an effnet run folder).

    from effnet import embedder
    model = embedder.load_insightface("ms1mv3_arcface_r50_fp16/backbone.pth")   # r50 inferred from the file
    embedder.evaluate_verification(model, "lfw/pairs.txt", images_root="lfw/")
    model.export("out/", "onnx", quantization="int8", representative_data=faces)

The file's key names are mapped once, in `effnet.weights.insightface`; the network is effnet's IResNet body
with the same E head (`create_embedder(arch, head="flatten")`), so its embeddings equal arcface_torch's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from effnet.embedder.hparams import EmbedderHParams
from effnet.embedder.model import Embedder
from effnet.models.embedding import EmbeddingNet


def load_insightface(
    weights: str | os.PathLike | Mapping, arch: str | None = None, input_size: int | None = None
) -> Embedder:
    """An `Embedder` from an insightface arcface_torch IResNet checkpoint (``.pth`` / ``.pt`` state dict,
    DDP ``module.`` prefixes, ``{"state_dict": ...}`` or a training checkpoint's ``state_dict_backbone``),
    or such a state dict.

    ``arch``: "iresnet18", "iresnet34", "iresnet50", "iresnet100" or "iresnet200"; None infers it from the
    blocks per stage in the file. A file of another depth is an error naming both. ``input_size``: None
    takes it from the E head (7 x 7 map: 112 px). Preprocessing is insightface's: RGB, resized to the input
    size, (x - 127.5) / 127.5.
    """
    from effnet.factory import create_model
    from effnet.weights.insightface import read_iresnet_weights
    from effnet.weights.load import read_weights

    if isinstance(weights, (str, os.PathLike)):
        state, _ = read_weights(weights)
        label = str(weights)
    else:
        state, label = dict(weights), "the state dict"
    found = read_iresnet_weights(state, label)
    if arch is not None and arch != found.arch:
        from effnet.models.families.iresnet import DEPTHS

        if arch not in DEPTHS:
            raise ValueError(f"arch must be one of {', '.join(DEPTHS)} or None (inferred), got {arch!r}")
        raise ValueError(
            f"{label}: holds {found.arch} weights ({found.layers} blocks per stage), not {arch}; "
            f"pass arch={found.arch!r} or leave arch out to infer it"
        )
    kwargs = {} if input_size is None else {"input_size": input_size}
    body = create_model(found.arch, num_classes=0, weights=state, **kwargs)
    body.weights_report.source = label
    head = body.head  # the file's E head, moved onto an EmbeddingNet as create_embedder(head="flatten") does
    body.drop_embedding_head()
    network = EmbeddingNet(body, head, "flatten", found.embedding_dim)
    size = body.preprocessing.input_size[0]
    hparams = EmbedderHParams(
        backbone=found.arch,
        head="flatten",
        embedding_dim=found.embedding_dim,
        input_size=size,
        pretrained=False,
    )
    return Embedder(network.eval(), hparams)


def is_weights_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a PyTorch weights file (rather than a run folder or an exported model)."""
    from effnet.weights.load import WEIGHT_SUFFIXES

    return Path(path).suffix.lower() in WEIGHT_SUFFIXES
