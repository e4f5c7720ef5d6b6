"""Detections from a network: head outputs -> boxes, scores, labels (post-processing), and the detections of
every image of a data set in its own pixels."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from effnet.object_detector.evaluation import Detections


def detections_from_outputs(
    network: nn.Module,
    class_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int,
) -> list[Detections]:
    """Decoded boxes (xyxy pixels at the network's input size), scores and labels per image, after
    per-class non-maximum suppression (`effnet.models.detection.postprocess`)."""
    from effnet.models.detection.postprocess import detections_per_image, postprocess

    outputs = postprocess(
        class_logits.float(),
        box_deltas.float(),
        network.anchor_grid().to(class_logits.device),
        network.spec.box_coder_weights,
        network.input_size,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        max_detections=max_detections,
    )
    found = detections_per_image(outputs, network.input_size)
    return [
        Detections(
            boxes.detach().cpu().numpy().astype(np.float32),
            scores.detach().cpu().numpy().astype(np.float32),
            labels.detach().cpu().numpy().astype(np.int64),
        )
        for boxes, scores, labels in found
    ]


def to_image_pixels(found: Detections, size: int, width: int, height: int) -> Detections:
    """Detections at the ``size`` x ``size`` input mapped back to an image of ``width`` x ``height``, and
    clipped to it."""
    scale = np.array([width / size, height / size] * 2, dtype=np.float32)
    boxes = found.boxes.reshape(-1, 4) * scale
    boxes = np.clip(boxes, 0, np.array([width, height, width, height], dtype=np.float32))
    return Detections(boxes, found.scores, found.labels)


def run_batches(
    heads: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    batches: Iterable[tuple[torch.Tensor, list[int]]],
) -> Iterable[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(indexes, class logits, box deltas) of each batch, without gradients."""
    with torch.inference_mode():
        for inputs, indexes in batches:
            class_logits, box_deltas = heads(inputs)
            yield indexes, class_logits, box_deltas
