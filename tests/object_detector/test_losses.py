"""The focal + box loss against its formula (Lin et al. 2017, "Focal Loss for Dense Object Detection",
eq. 5; alpha 0.25, gamma 1.5 and the Huber delta 0.1 / box weight 50 from google/automl
`efficientdet/hparams_config.py`), and gradient descent on it."""

from __future__ import annotations

import math

import torch

from effnet.object_detector.losses import LossSettings, detection_loss, focal_loss
from effnet.object_detector.targets import IGNORED, NEGATIVE, AnchorTargets


def test_focal_loss_matches_the_formula() -> None:
    logit, alpha, gamma = 0.7, 0.25, 1.5
    p = 1 / (1 + math.exp(-logit))
    positive = -alpha * (1 - p) ** gamma * math.log(p)
    negative = -(1 - alpha) * p**gamma * math.log(1 - p)
    got = focal_loss(torch.tensor([logit, logit]), torch.tensor([1.0, 0.0]), alpha, gamma)
    assert torch.allclose(got, torch.tensor([positive, negative]), atol=1e-6)


def test_detection_loss_normalizes_by_positives_and_skips_ignored_anchors() -> None:
    targets = AnchorTargets(
        torch.tensor([[1, NEGATIVE, IGNORED]]),
        torch.tensor([[[0.05, 0.0, 0.2, 0.0], [0] * 4, [0] * 4]]).float(),
    )
    logits = torch.tensor([[[0.0, 2.0], [1.0, -1.0], [5.0, 5.0]]])
    deltas = torch.zeros(1, 3, 4)
    settings = LossSettings()
    loss = detection_loss(logits, deltas, targets, settings)
    one_hot = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    expected_classes = focal_loss(logits[0, :2], one_hot, 0.25, 1.5).sum() / 2  # one positive + 1
    # Huber, delta 0.1: 0.5 * 0.05^2 (quadratic) + 0.1 * (0.2 - 0.05) (linear), over (1 + 1) * 4
    expected_boxes = (0.5 * 0.05**2 + 0.1 * (0.2 - 0.5 * 0.1)) / 8
    assert loss.positives == 1
    assert torch.isclose(loss.classes, expected_classes)
    assert torch.isclose(loss.boxes, torch.tensor(expected_boxes))
    assert torch.isclose(loss.total, expected_classes + 50 * expected_boxes)


def test_ssd_uses_smooth_l1() -> None:
    settings = LossSettings.for_detector("ssdlite_mobilenet_v2")
    assert (settings.box_loss, settings.delta, settings.box_weight) == ("smooth_l1", 1.0, 1.0)
    targets = AnchorTargets(torch.tensor([[0]]), torch.tensor([[[2.0, 0.5, 0.0, 0.0]]]))
    loss = detection_loss(torch.zeros(1, 1, 1), torch.zeros(1, 1, 4), targets, settings)
    assert torch.isclose(loss.boxes, torch.tensor((1.5 + 0.125) / 2))


def test_gradient_descent_lowers_the_loss() -> None:
    torch.manual_seed(0)
    classes = torch.randint(-1, 3, (2, 50))
    targets = AnchorTargets(classes, torch.randn(2, 50, 4) * 0.1 * (classes >= 0).unsqueeze(-1))
    logits = torch.full((2, 50, 3), -2.0, requires_grad=True)
    deltas = torch.zeros(2, 50, 4, requires_grad=True)
    optimizer = torch.optim.Adam([logits, deltas], lr=0.1)
    losses = []
    for _ in range(40):
        loss = detection_loss(logits, deltas, targets, LossSettings()).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
