"""Embedding heads: turn a backbone's final feature map into one identity vector (face, person, product
recognition), and `EmbeddingNet`, a backbone with such a head.

Heads (shared/reference/recognition.md, insightface's output layers):

- ``gap``: global average pool -> FC -> BN. Cheapest; throws away where things are in the image.
- ``gdc``: a depthwise conv whose kernel covers the whole final map (MobileFaceNet's "global depthwise
  conv", 4x4 for an EfficientNet at 112 px) -> BN -> FC -> BN: a learned, per-channel spatial weighting.
- ``flatten``: IResNet's "E" head: BN -> Dropout -> Flatten -> FC -> BN. Keeps every position; the FC is
  large (C*H*W inputs), so ``reduce_channels`` can add a 1x1 conv down to fewer channels first.

The final BN1d of each head has its scale frozen at 1 (arcface_torch's ``features`` layer): the embedding is
L2-normalised downstream, so a learned scale could only shrink features to make the loss smaller.
"""

from __future__ import annotations

import torch
from torch import nn

from effnet.models.families.iresnet import is_iresnet
from effnet.models.spec import EMBEDDING_HEADS as HEADS

BN_EPS = 1e-5  # arcface_torch's BatchNorm eps in heads and IResNet
# The eps of the gdc / flatten heads' BatchNorm over the backbone's feature channels (Keras' default). With
# arcface_torch's 1e-5, channels the training identities hardly vary end with a gain of up to 1 / sqrt(1e-5)
# = 316, which multiplies their int8 rounding errors on unseen identities: on 12-epoch digit embedders,
# int8 cosine to float 0.980 (gdc) / 0.989 (flatten) with 1e-5, 0.990 / 0.993 with 1e-3, float verification
# accuracy within the fold spread (README, "int8 and int16 embeddings"). IResNet's own E head keeps 1e-5, so
# that insightface checkpoints reproduce exactly; embedders saved before keep the eps they were trained with.
HEAD_BN_EPS = 1e-3


def _embedding_bn(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim, eps=BN_EPS)
    nn.init.ones_(bn.weight)
    bn.weight.requires_grad_(False)
    return bn


class GAPHead(nn.Module):
    """Global average pool -> FC (no bias: the BN after it has one) -> BN."""

    def __init__(self, channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, embedding_dim, bias=False)
        self.features = _embedding_bn(embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(x.mean((2, 3))))


class GDCHead(nn.Module):
    """Global depthwise conv (kernel = the final map) -> BN -> FC -> BN (MobileFaceNet's GDC)."""

    def __init__(
        self, channels: int, embedding_dim: int, map_size: tuple[int, int], bn_eps: float = HEAD_BN_EPS
    ) -> None:
        super().__init__()
        self.map_size = tuple(map_size)
        self.conv = nn.Conv2d(channels, channels, self.map_size, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels, eps=bn_eps)
        self.fc = nn.Linear(channels, embedding_dim, bias=False)
        self.features = _embedding_bn(embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.fc(self.bn(self.conv(x)).flatten(1)))


class FlattenHead(nn.Module):
    """IResNet's E head: [1x1 conv reduction] -> BN -> Dropout -> Flatten -> FC -> BN.

    Without ``reduce_channels`` the layout is arcface_torch's IResNet head exactly (bn2, dropout, fc,
    features), so IResNet uses this class for its own head.
    """

    def __init__(
        self,
        channels: int,
        embedding_dim: int,
        map_size: tuple[int, int],
        dropout: float = 0.0,
        reduce_channels: int | None = None,
        bn_eps: float = BN_EPS,
    ) -> None:
        super().__init__()
        self.map_size = tuple(map_size)
        self.reduce: nn.Module = nn.Identity()
        if reduce_channels:
            self.reduce = nn.Sequential(
                nn.Conv2d(channels, reduce_channels, 1, bias=False),
                nn.BatchNorm2d(reduce_channels, eps=bn_eps),
                nn.PReLU(reduce_channels),
            )
            channels = reduce_channels
        self.bn2 = nn.BatchNorm2d(channels, eps=bn_eps)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels * self.map_size[0] * self.map_size[1], embedding_dim)
        self.features = _embedding_bn(embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.map_size:
            raise ValueError(
                f"the flatten head was built for a {self.map_size} feature map, got {tuple(x.shape[-2:])}; "
                "feed images of the size the embedder was created with"
            )
        x = self.bn2(self.reduce(x))
        return self.features(self.fc(self.dropout(x).flatten(1)))


def build_head(
    head: str,
    channels: int,
    map_size: tuple[int, int],
    embedding_dim: int = 512,
    dropout: float = 0.0,
    reduce_channels: int | None = None,
    bn_eps: float = HEAD_BN_EPS,
) -> nn.Module:
    """One of `HEADS` for a (channels, *map_size) feature map; ``bn_eps``: the eps of the gdc / flatten
    heads' BatchNorm over the feature channels (see `HEAD_BN_EPS`)."""
    if head not in HEADS:
        raise ValueError(f"unknown embedding head {head!r}; choose one of {HEADS}")
    if embedding_dim < 1:
        raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
    if reduce_channels and head != "flatten":
        raise ValueError("reduce_channels applies to the flatten head only")
    if head == "gap":
        return GAPHead(channels, embedding_dim)
    if head == "gdc":
        return GDCHead(channels, embedding_dim, map_size, bn_eps)
    return FlattenHead(channels, embedding_dim, map_size, dropout, reduce_channels, bn_eps)


class EmbeddingNet(nn.Module):
    """A backbone's final feature map -> an embedding head -> an (N, embedding_dim) vector (not normalised;
    compare embeddings by cosine similarity).

    Exports like a classifier: it has ``preprocessing``, ``name`` and ``num_classes = 0`` (the exported
    file's metadata says its output is "features").
    """

    num_classes = 0

    def __init__(self, backbone: nn.Module, head: nn.Module, head_name: str, embedding_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.head_name = head_name
        self.embedding_dim = embedding_dim
        self.preprocessing = backbone.preprocessing
        self.in_chans = int(getattr(backbone, "in_chans", 3))
        self.name = f"{backbone.name}-{head_name}{embedding_dim}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(x))

    def extra_repr(self) -> str:
        return f"name={self.name}, input_size={self.preprocessing.input_size}"


def final_map(backbone: nn.Module, input_size: tuple[int, int]) -> tuple[int, int, int]:
    """(channels, height, width) of ``backbone.forward_features`` at ``input_size``, from a meta-device
    copy of the backbone (shapes only: no compute, no change to its BatchNorm statistics)."""
    import copy

    with torch.device("meta"):
        probe = copy.deepcopy(backbone).to("meta").eval()
        out = probe.forward_features(torch.zeros(1, int(getattr(backbone, "in_chans", 3)), *input_size))
    return int(out.shape[1]), int(out.shape[2]), int(out.shape[3])


def attach_embedding_head(
    backbone: nn.Module,
    head: str = "gdc",
    embedding_dim: int = 512,
    input_size: int | tuple[int, int] = 112,
    dropout: float = 0.0,
    reduce_channels: int | None = None,
    head_bn_eps: float | None = None,
) -> EmbeddingNet:
    """``backbone`` (a built effnet model with ``forward_features``) + an embedding ``head`` ("gap", "gdc" or
    "flatten") at ``input_size``: `effnet.create_embedder` without the name lookup and weights loading.

    An IResNet backbone's own E head is dropped (its body ends at layer4) and replaced by ``head``;
    ``head="flatten"`` rebuilds it exactly. ``head_bn_eps``: the eps of the gdc / flatten heads' BatchNorm
    over the feature channels; by default `HEAD_BN_EPS`, and arcface_torch's 1e-5 for IResNet + flatten,
    its own head.
    """
    if not hasattr(backbone, "forward_features") or not hasattr(backbone, "preprocessing"):
        raise TypeError(
            f"backbone must be a model name or an effnet model with forward_features and preprocessing, "
            f"got {type(backbone).__name__}"
        )
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    backbone.preprocessing = backbone.preprocessing.with_size(size)
    iresnet = is_iresnet(backbone)
    if head_bn_eps is None:
        head_bn_eps = BN_EPS if iresnet and head == "flatten" else HEAD_BN_EPS
    if iresnet:
        backbone.drop_embedding_head()
    channels, height, width = final_map(backbone, size)
    module = build_head(head, channels, (height, width), embedding_dim, dropout, reduce_channels, head_bn_eps)
    return EmbeddingNet(backbone, module, head, embedding_dim)
