"""Target assignment on hand-made anchors and boxes: IoU >= 0.5 positive, < 0.4 negative, between ignored,
and every ground-truth box claims its best anchor (google/automl `efficientdet/object_detection/
argmax_matcher.py`, ``force_match_for_each_row``)."""

from __future__ import annotations

import torch

from effnet.models.detection.boxes import encode
from effnet.object_detector.targets import IGNORED, NEGATIVE, assign_batch, assign_targets

WEIGHTS = (1.0, 1.0, 1.0, 1.0)


def test_positive_ignored_and_negative_by_iou() -> None:
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    anchors = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1.0: positive
            [0.0, 0.0, 10.0, 6.0],  # IoU 0.6: positive
            [0.0, 0.0, 10.0, 4.5],  # IoU 0.45: ignored
            [0.0, 0.0, 10.0, 3.0],  # IoU 0.3: negative
            [50.0, 50.0, 60.0, 60.0],  # IoU 0: negative
        ]
    )
    targets = assign_targets(anchors, box, torch.tensor([3]), WEIGHTS)
    assert targets.classes.tolist() == [3, 3, IGNORED, NEGATIVE, NEGATIVE]
    assert torch.allclose(targets.deltas[1], encode(box, anchors[1:2], WEIGHTS)[0])
    assert torch.equal(targets.deltas[0], torch.zeros(4))  # the same box: zero offsets
    assert torch.equal(targets.deltas[2:], torch.zeros(3, 4))


def test_every_box_claims_its_best_anchor_even_below_the_threshold() -> None:
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    # a thin box: IoU 0.3 with the first anchor at best, still that anchor's target
    boxes = torch.tensor([[0.0, 0.0, 10.0, 3.0]])
    targets = assign_targets(anchors, boxes, torch.tensor([1]), WEIGHTS)
    assert targets.classes.tolist() == [1, NEGATIVE]
    assert torch.allclose(targets.deltas[0], encode(boxes, anchors[:1], WEIGHTS)[0])


def test_an_anchor_takes_the_box_it_overlaps_most() -> None:
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 0.0, 20.0, 10.0]])
    boxes = torch.tensor([[11.0, 0.0, 20.0, 10.0], [0.0, 0.0, 9.0, 10.0]])
    targets = assign_targets(anchors, boxes, torch.tensor([0, 1]), WEIGHTS)
    assert targets.classes.tolist() == [1, 0]


def test_an_image_without_boxes_is_all_negative_and_batches_stack() -> None:
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    empty = (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    one = (torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([2]))
    batch = assign_batch(anchors, [empty, one], (10.0, 10.0, 5.0, 5.0))
    assert batch.classes.shape == (2, 2) and batch.deltas.shape == (2, 2, 4)
    assert batch.classes[0].tolist() == [NEGATIVE, NEGATIVE]
    assert batch.classes[1].tolist() == [2, NEGATIVE]  # IoU 25/175 = 0.14 for the second anchor
