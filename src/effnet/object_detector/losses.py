"""The detection loss: focal loss on per-class sigmoid logits plus a box regression loss, both normalized by
the number of positive anchors in the batch.

Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection") with alpha 0.25 and gamma 1.5, and the
Huber box loss with delta 0.1 weighted 50, are EfficientDet's settings (google/automl `efficientdet/
hparams_config.py`: ``alpha``, ``gamma``, ``delta``, ``box_loss_weight``; `det_model_fn.py` adds 1 to the
positive count). SSDLite's box coder scales offsets by (10, 10, 5, 5), for which smooth-L1 with beta 1 and
weight 1 is the usual choice (torchvision `models/detection/ssd.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from effnet.object_detector.targets import IGNORED, AnchorTargets


@dataclass(frozen=True)
class LossSettings:
    """``box_loss``: "huber" (EfficientDet) or "smooth_l1" (SSD); ``delta``: the Huber / smooth-L1
    threshold; ``box_weight``: the box loss's weight against the class loss."""

    alpha: float = 0.25
    gamma: float = 1.5
    box_loss: str = "huber"
    delta: float = 0.1
    box_weight: float = 50.0

    @classmethod
    def for_detector(cls, name: str) -> LossSettings:
        if name.startswith("ssd"):
            return cls(box_loss="smooth_l1", delta=1.0, box_weight=1.0)
        return cls()


class DetectionLoss(NamedTuple):
    """The batch's loss (``total`` = ``classes`` + weight x ``boxes``) and its positive anchors."""

    total: torch.Tensor
    classes: torch.Tensor
    boxes: torch.Tensor
    positives: int


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Element-wise sigmoid focal loss of ``logits`` against 0/1 ``targets`` (same shape)."""
    probability = torch.sigmoid(logits)
    cross_entropy = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = targets * probability + (1 - targets) * (1 - probability)
    alpha_t = targets * alpha + (1 - targets) * (1 - alpha)
    return alpha_t * (1 - p_t).pow(gamma) * cross_entropy


def detection_loss(
    class_logits: torch.Tensor, box_deltas: torch.Tensor, targets: AnchorTargets, settings: LossSettings
) -> DetectionLoss:
    """Loss of head outputs ``class_logits`` [N, A, C] and ``box_deltas`` [N, A, 4] against the anchors'
    ``targets`` (classes [N, A], deltas [N, A, 4]): summed over anchors, normalized by the positives + 1."""
    class_logits, box_deltas = class_logits.float(), box_deltas.float()
    classes = targets.classes
    positive = classes >= 0
    positives = int(positive.sum())
    normalizer = positives + 1.0
    one_hot = nn.functional.one_hot(classes.clamp_min(0), class_logits.shape[-1]).to(class_logits.dtype)
    one_hot = one_hot * positive.unsqueeze(-1)
    per_anchor = focal_loss(class_logits, one_hot, settings.alpha, settings.gamma).sum(-1)
    class_loss = (per_anchor * (classes != IGNORED)).sum() / normalizer
    predicted, wanted = box_deltas[positive], targets.deltas[positive].to(box_deltas.dtype)
    if settings.box_loss == "huber":
        box_sum = nn.functional.huber_loss(predicted, wanted, delta=settings.delta, reduction="sum")
        box_loss = box_sum / (normalizer * 4.0)  # automl: a mean over the 4 coordinates too
    elif settings.box_loss == "smooth_l1":
        box_loss = nn.functional.smooth_l1_loss(predicted, wanted, beta=settings.delta, reduction="sum")
        box_loss = box_loss / normalizer
    else:
        raise ValueError(f"box_loss must be 'huber' or 'smooth_l1', got {settings.box_loss!r}")
    return DetectionLoss(class_loss + settings.box_weight * box_loss, class_loss, box_loss, positives)
