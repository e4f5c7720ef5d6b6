"""Detection post-processing made only of fixed-shape tensor ops, so that it runs inside exported .onnx and
.tflite files: scores -> top-k candidates -> decoded boxes -> class-aware non-maximum suppression -> the
``max_detections`` best, padded.

The outputs follow TFLite detection models (what the TFLite Task Library's ObjectDetector reads):
boxes [N, D, 4] as (ymin, xmin, ymax, xmax) normalized to 0..1, classes [N, D] float32 label index,
scores [N, D], count [N] float32; rows past ``count`` are padding with score 0, class 0 and box 0.

NMS kind: exact greedy NMS (the result of the usual sequential loop: walk the candidates by decreasing
score, keep one unless a kept candidate of the same class overlaps it by more than ``iou_threshold``),
computed without data-dependent control flow. With ``S[j, i] = 1`` when candidate j scores higher than i,
has the same class and IoU > threshold, greedy NMS keeps exactly the fixed point of
``keep = valid & not any_j(keep[j] & S[j, i])``. Iterating that equation from ``keep = valid`` makes
candidate i correct once all higher-scoring candidates are: after t iterations the first t + 1 are, so
K - 1 iterations (one [K] x [K, K] product each, K = ``pre_nms_top_k``) give the exact greedy result for
any input. The equation has a single solution (candidate i depends only on higher-scoring ones), so an
eager run stops as soon as an iteration changes nothing, usually after a few; an exported graph holds all
K - 1. Unlike "Fast NMS" (YOLACT), a candidate suppressed only by an already-suppressed one is kept,
as in the sequential loop; the price is K small matrix products, cheap next to the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from effnet.models.detection.anchors import AnchorGrid
from effnet.models.detection.boxes import decode
from effnet.models.detection.spec import (
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_PRE_NMS_TOP_K,
    DEFAULT_SCORE_THRESHOLD,
)


def postprocess(
    class_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    anchors: torch.Tensor | AnchorGrid,
    box_coder_weights: Sequence[float],
    image_size: int | Sequence[int],
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    pre_nms_top_k: int = DEFAULT_PRE_NMS_TOP_K,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detections from a detector's raw outputs, in the TFLite detection layout (see the module docstring).

    - ``class_logits`` [N, A, C] (per-class sigmoid logits), ``box_deltas`` [N, A, 4] (see
      `effnet.models.detection.boxes.decode`), ``anchors`` [A, 4] (xmin, ymin, xmax, ymax) in pixels of the
      input image, whose size is ``image_size`` (an int for a square image, or (height, width)), or the
      `AnchorGrid` that computes them (a detector's ``anchor_grid()``: no [A, 4] table in an exported file).
    - The ``pre_nms_top_k`` highest (anchor, class) scores are the candidates; those above
      ``score_threshold`` take part in class-aware greedy NMS at ``iou_threshold``; the ``max_detections``
      best survivors come out, sorted by decreasing score. Boxes are clipped to the image.

    Returns (boxes [N, D, 4], classes [N, D], scores [N, D], count [N]), D = ``max_detections``, all float32.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    batch, num_anchors, num_classes = class_logits.shape
    k = min(int(pre_nms_top_k), num_anchors * num_classes)
    scores = torch.sigmoid(class_logits.float()).reshape(batch, num_anchors * num_classes)
    top_scores, top_index = torch.topk(scores, k, dim=1)  # sorted, highest first
    # anchor and class of each candidate; float arithmetic (exact below 2**24 pairs) converts everywhere
    pair = top_index.float()
    anchor_index = torch.floor((pair + 0.5) / num_classes)
    classes = pair - anchor_index * num_classes
    anchor_index = anchor_index.long()
    deltas = torch.gather(box_deltas.float(), 1, anchor_index[..., None].expand(batch, k, 4))
    candidates = anchors(anchor_index) if isinstance(anchors, AnchorGrid) else anchors.float()[anchor_index]
    boxes = decode(deltas, candidates, box_coder_weights)
    limits = boxes.new_tensor([width, height, width, height])
    boxes = torch.minimum(boxes.clamp(min=0.0), limits)

    valid = (top_scores > score_threshold).float()
    keep = _greedy_nms(boxes, classes, valid, iou_threshold)
    kept_scores = top_scores * keep
    if k < max_detections:  # fewer candidates than output rows: pad with empty ones
        pad = max_detections - k
        kept_scores = nn.functional.pad(kept_scores, (0, pad))
        boxes = nn.functional.pad(boxes, (0, 0, 0, pad))
        classes = nn.functional.pad(classes, (0, pad))
    out_scores, order = torch.topk(kept_scores, max_detections, dim=1)
    present = (out_scores > 0).float()
    out_boxes = torch.gather(boxes, 1, order[..., None].expand(batch, max_detections, 4)) / limits
    out_boxes = out_boxes[..., [1, 0, 3, 2]] * present[..., None]  # (ymin, xmin, ymax, xmax)
    out_classes = torch.gather(classes, 1, order) * present
    count = present.sum(dim=1)
    return out_boxes, out_classes, out_scores, count


def _greedy_nms(boxes: torch.Tensor, classes: torch.Tensor, valid: torch.Tensor, iou_threshold: float):
    """1.0 for the candidates (sorted by decreasing score) that greedy NMS keeps, else 0.0: see the module
    docstring for why K - 1 iterations are exact."""
    k = boxes.shape[1]
    iou = _batched_iou(boxes)
    same_class = (classes[:, :, None] == classes[:, None, :]).float()
    # suppresses[j, i]: candidate j (earlier, so higher-scoring) would suppress candidate i if it is kept
    # positions 1..K counted from the candidates themselves (valid * 0 + 1: ones no exporter folds away), so
    # that the file computes this K x K mask instead of storing it as a constant
    order = torch.cumsum(valid[:1] * 0 + 1, dim=-1)[0]
    earlier = (order[:, None] < order[None, :]).float()
    suppresses = (iou > iou_threshold).float() * same_class * earlier
    # keep [N, 1, K]; (keep @ suppresses)[i] counts the kept candidates that suppress i (an integer), so
    # relu(valid - count) is valid[i] when none does and 0 otherwise: three ops per iteration
    valid = valid[:, None, :]
    keep = valid
    exporting = torch.compiler.is_compiling()  # torch.export (ONNX, LiteRT): a fixed graph, all K - 1 steps
    for _ in range(k - 1):
        updated = torch.relu(valid - torch.matmul(keep, suppresses))
        if not exporting and torch.equal(updated, keep):
            break  # a fixed point: the equation has only one, the greedy result (eager runs stop early)
        keep = updated
    return keep[:, 0, :]


def _batched_iou(boxes: torch.Tensor) -> torch.Tensor:
    """IoU of every pair of ``boxes`` [N, K, 4] with each other: [N, K, K]."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    area = (x1 - x0) * (y1 - y0)
    width = (
        torch.minimum(x1[:, :, None], x1[:, None, :]) - torch.maximum(x0[:, :, None], x0[:, None, :])
    ).clamp(min=0)
    height = (
        torch.minimum(y1[:, :, None], y1[:, None, :]) - torch.maximum(y0[:, :, None], y0[:, None, :])
    ).clamp(min=0)
    intersection = width * height
    union = area[:, :, None] + area[:, None, :] - intersection
    return intersection / union.clamp(min=1e-9)


class DetectionPostprocess(nn.Module):
    """`postprocess` as a module holding the anchors (an [A, 4] table or an `AnchorGrid`) and settings, for
    appending to a detector before export: ``forward(class_logits, box_deltas) -> (boxes, classes, scores,
    count)``."""

    def __init__(
        self,
        anchors: torch.Tensor | AnchorGrid,
        box_coder_weights: Sequence[float],
        image_size: int | Sequence[int],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        iou_threshold: float = DEFAULT_IOU_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        pre_nms_top_k: int = DEFAULT_PRE_NMS_TOP_K,
    ) -> None:
        super().__init__()
        if isinstance(anchors, AnchorGrid):
            self.anchors: torch.Tensor | AnchorGrid = anchors
        else:
            self.register_buffer("anchors", anchors.detach().float().clone(), persistent=False)
        self.box_coder_weights = tuple(float(w) for w in box_coder_weights)
        self.image_size = image_size if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        self.pre_nms_top_k = int(pre_nms_top_k)

    def forward(self, class_logits: torch.Tensor, box_deltas: torch.Tensor):
        return postprocess(
            class_logits,
            box_deltas,
            self.anchors,
            self.box_coder_weights,
            self.image_size,
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            max_detections=self.max_detections,
            pre_nms_top_k=self.pre_nms_top_k,
        )


def detections_per_image(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], image_size: int | Sequence[int]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """`postprocess` outputs as one (boxes [K, 4] xyxy pixels at ``image_size``, scores [K], labels int64 [K])
    per image, padding rows dropped: the shared box format of training and evaluation."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    boxes, classes, scores, count = outputs
    scale = boxes.new_tensor([width, height, width, height])
    result = []
    for image in range(boxes.shape[0]):
        n = int(count[image])
        xyxy = boxes[image, :n][:, [1, 0, 3, 2]] * scale
        result.append((xyxy, scores[image, :n], classes[image, :n].long()))
    return result
