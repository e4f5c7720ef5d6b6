"""Which anchor learns which ground-truth box: IoU matching, as EfficientDet and SSD train.

An anchor whose best IoU with a ground-truth box is >= ``positive`` learns that box's class and offsets; one
below ``negative`` learns "no object" for every class; one in between is ignored (neither rewarded nor
punished: its box half covers an object). Every ground-truth box also claims its best anchor, whatever the
IoU, so a box of a shape no anchor fits well is still learned (google/automl `efficientdet/object_detection/
argmax_matcher.py`, ``force_match_for_each_row``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from effnet.models.detection.boxes import box_iou, encode

NEGATIVE, IGNORED = -1, -2  # class targets of anchors that are not positive


class AnchorTargets(NamedTuple):
    """Per anchor: ``classes`` int64 [A] (a label 0..C-1, `NEGATIVE` or `IGNORED`) and ``deltas`` float32
    [A, 4] (the matched box encoded against the anchor; zeros where not positive)."""

    classes: torch.Tensor
    deltas: torch.Tensor


def assign_targets(
    anchors: torch.Tensor,
    boxes: torch.Tensor,
    labels: torch.Tensor,
    box_coder_weights: tuple[float, float, float, float],
    positive: float = 0.5,
    negative: float = 0.4,
) -> AnchorTargets:
    """Targets of ``anchors`` [A, 4] for one image's ``boxes`` [K, 4] (xyxy, pixels of the same image as the
    anchors) and ``labels`` [K]; see the module docstring for the rule."""
    count = anchors.shape[0]
    classes = torch.full((count,), NEGATIVE, dtype=torch.long, device=anchors.device)
    deltas = torch.zeros((count, 4), dtype=torch.float32, device=anchors.device)
    if boxes.numel() == 0:
        return AnchorTargets(classes, deltas)
    boxes = boxes.to(anchors.device, torch.float32)
    iou = box_iou(anchors.float(), boxes)  # [A, K]
    best_iou, matched = iou.max(dim=1)
    classes[best_iou < positive] = IGNORED
    classes[best_iou < negative] = NEGATIVE
    # each box claims its best anchor (the last box wins an anchor two boxes claim, as automl's matcher)
    best_anchor = iou.argmax(dim=0)  # [K]
    matched[best_anchor] = torch.arange(len(boxes), device=anchors.device)
    is_positive = best_iou >= positive
    is_positive[best_anchor] = True
    classes[is_positive] = labels.to(anchors.device, torch.long)[matched[is_positive]]
    deltas[is_positive] = encode(boxes[matched[is_positive]], anchors[is_positive].float(), box_coder_weights)
    return AnchorTargets(classes, deltas)


def assign_batch(
    anchors: torch.Tensor,
    targets: list[tuple[torch.Tensor, torch.Tensor]],
    box_coder_weights: tuple[float, float, float, float],
) -> AnchorTargets:
    """`assign_targets` for every image of a batch, stacked: classes [N, A], deltas [N, A, 4]."""
    assigned = [assign_targets(anchors, boxes, labels, box_coder_weights) for boxes, labels in targets]
    return AnchorTargets(
        torch.stack([a.classes for a in assigned]), torch.stack([a.deltas for a in assigned])
    )
