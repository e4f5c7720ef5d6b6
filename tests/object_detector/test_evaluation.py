"""COCO metrics by pycocotools' COCOeval, under Model Maker's names (tensorflow/examples
`lite/model_maker/third_party/efficientdet/coco_metric.py`): perfect detections score AP 1.0."""

from __future__ import annotations

import numpy as np
import pytest

from effnet.object_detector.evaluation import STAT_NAMES, Detections, coco_metrics

pytest.importorskip("pycocotools")
LABELS = ["cat", "dog"]
BOXES = {0: ([[10, 10, 60, 50], [70, 20, 120, 90]], [0, 1]), 1: ([[5, 5, 45, 45]], [1])}


def ground_truth() -> dict:
    annotations = []
    for image_id, (boxes, labels) in BOXES.items():
        for (x0, y0, x1, y1), label in zip(boxes, labels, strict=True):
            annotations.append(
                {"image_id": image_id, "category_id": label + 1, "bbox": [x0, y0, x1 - x0, y1 - y0]}
            )
    images = [{"id": i, "width": 128, "height": 96} for i in BOXES]
    return {"images": images, "annotations": annotations}


def detections(shift: float = 0.0, labels_offset: int = 0) -> list[Detections]:
    return [
        Detections(
            np.array(boxes, np.float32) + np.float32(shift),
            np.full(len(labels), 0.9, np.float32),
            (np.array(labels) + labels_offset) % 2,
        )
        for boxes, labels in BOXES.values()
    ]


def test_perfect_detections_score_one_with_model_makers_keys() -> None:
    metrics = coco_metrics(ground_truth(), detections(), list(BOXES), LABELS)
    assert list(metrics) == [*STAT_NAMES, "AP_/cat", "AP_/dog"]
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP_/cat"] == pytest.approx(1.0) and metrics["AP_/dog"] == pytest.approx(1.0)
    assert metrics["ARmax100"] == pytest.approx(1.0)
    assert metrics["APl"] == -1.0  # no box over 96^2 px: undefined, as COCOeval reports it


def test_shifted_boxes_pass_iou_half_but_not_the_stricter_thresholds() -> None:
    # 5 px down and right: IoU 0.62, 0.65 and 0.72 with the three boxes
    metrics = coco_metrics(ground_truth(), detections(shift=5.0), list(BOXES), LABELS)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == 0.0
    assert 0.0 < metrics["AP"] < 1.0


def test_wrong_labels_and_no_detections_score_zero() -> None:
    wrong = coco_metrics(ground_truth(), detections(labels_offset=1), list(BOXES), LABELS)
    assert wrong["AP"] == 0.0 and wrong["AP_/cat"] == 0.0
    empty = [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))] * 2
    nothing = coco_metrics(ground_truth(), empty, list(BOXES), LABELS)
    assert nothing["AP"] == 0.0 and nothing["AP_/dog"] == 0.0
