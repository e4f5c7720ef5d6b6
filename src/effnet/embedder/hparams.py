"""Settings of an embedder training run (`EmbedderHParams`) and the names and defaults of its losses: plain
data, importable without torch (the `effnet embed-train` command shows them in its --help)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from effnet.models.spec import EMBEDDING_HEADS as HEADS
from effnet.validation import check_integer, check_number

LOSSES = ("arcface", "cosface", "combined", "softmax")
# (m1, m2, m3) of insightface's CombinedMarginLoss: ArcFace m=0.5, CosFace m=0.4
DEFAULT_MARGINS = {"arcface": (1.0, 0.5, 0.0), "cosface": (1.0, 0.0, 0.4)}
DEFAULT_SCALE = 64.0


@dataclass
class EmbedderHParams:
    """Settings of one embedder training run. Defaults follow arcface_torch (SGD, momentum 0.9, weight decay
    5e-4, ArcFace s=64 m=0.5, 512-d, 112 px, gradient norm clipped to 5) except the learning rate: 0.1 is
    for batch 128 from scratch; a pretrained backbone fine-tuned on a small set needs less, and learns at
    ``backbone_lr_scale`` of it."""

    backbone: str = "efficientnet_lite0"
    head: str = "gdc"
    loss: str = "arcface"
    embedding_dim: int = 512
    input_size: int = 112
    scale: float | None = None  # None: 64 (margin losses)
    margins: tuple[float, float, float] | float | None = None  # None: the loss's defaults
    # margin losses on few identities: ramp the margins linearly from 0 over this many epochs (fractions
    # allowed), and/or no margin for targets more than 90 degrees away (insightface's easy_margin)
    margin_warmup_epochs: float = 0.0
    easy_margin: bool = False
    # clip the gradient norm of the network (backbone + embedding head, not the identity centres) to this,
    # as arcface_torch does; None: no clipping. Without it s=64 on few identities collapsed every embedding
    # onto one point (README, recognition), with or without a margin
    clip_grad_norm: float | None = 5.0
    pretrained: bool = True
    dropout: float = 0.0
    drop_path_rate: float | None = None  # the backbone's stochastic depth; None: the model's default
    reduce_channels: int | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int | None = None  # None: one epoch
    backbone_lr_scale: float = 0.1  # applied to a pretrained backbone only
    # "auto": keep a pretrained backbone's BatchNorm statistics; "all": the head's BatchNorm too (then a
    # torchrun run computes exactly what one process does: no statistics of each rank's share)
    freeze_bn: bool | str = "auto"
    sync_bn: bool = False  # torchrun: BatchNorm statistics over the global batch (SyncBatchNorm, CUDA)
    flip: bool = True  # random horizontal flips in training (the verification flip test assumes them)
    # random crops of this fraction of the image area up to all of it (aspect 7/8-8/7), then resized to the
    # input size: small shifts and zooms. None: the whole image (aligned faces usually want none)
    crop_scale: float | None = None
    val_pairs: int = 1000
    shuffle: bool = True
    seed: int = 0
    num_workers: int | None = None

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        for name in ("epochs", "batch_size", "embedding_dim", "val_pairs"):
            check_integer(name, getattr(self, name), 1)
        check_integer("input_size", self.input_size, 32)
        check_integer("seed", self.seed, 0)
        for name in ("warmup_steps", "num_workers"):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), 0)
        check_number("learning_rate", self.learning_rate, above=0)
        check_number("momentum", self.momentum, at_least=0, at_most=1)
        check_number("weight_decay", self.weight_decay, at_least=0)
        check_number("backbone_lr_scale", self.backbone_lr_scale, at_least=0)
        check_number("dropout", self.dropout, at_least=0, below=1)
        check_number("margin_warmup_epochs", self.margin_warmup_epochs, at_least=0)
        if self.scale is not None:
            check_number("scale", self.scale, above=0)
        if self.drop_path_rate is not None:
            check_number("drop_path_rate", self.drop_path_rate, at_least=0, below=1)
        margins = self.margins if isinstance(self.margins, (tuple, list)) else [self.margins]
        for margin in margins:
            if margin is not None:
                check_number("margins", margin)
        if self.freeze_bn not in (True, False, "auto", "all"):
            raise ValueError(f"freeze_bn must be True, False, 'auto' or 'all', got {self.freeze_bn!r}")
        if not 0 <= self.margin_warmup_epochs <= self.epochs:
            raise ValueError(
                f"margin_warmup_epochs must be in [0, epochs={self.epochs}], got {self.margin_warmup_epochs}"
            )
        if self.loss == "softmax" and (self.margin_warmup_epochs or self.easy_margin):
            raise ValueError("margin_warmup_epochs and easy_margin apply to margin losses, not softmax")
        if self.clip_grad_norm is not None:
            check_number("clip_grad_norm (None: no clipping)", self.clip_grad_norm, above=0)
        if self.crop_scale is not None:
            check_number("crop_scale (None: no random crops)", self.crop_scale, above=0, at_most=1)

    def to_dict(self) -> dict:
        data = asdict(self)
        if isinstance(data["margins"], tuple):
            data["margins"] = list(data["margins"])
        return data
