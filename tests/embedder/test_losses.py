"""The margin losses' logits equal their formulas (shared/reference/recognition.md)."""

import math

import pytest
import torch
import torch.nn.functional as F

from effnet.embedder.losses import MarginLoss, SoftmaxLoss, make_loss, margin_fraction


def _setup(loss):
    torch.manual_seed(1)  # not the seed the loss's weights were drawn with
    embeddings = torch.randn(6, 16)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    cosine = F.normalize(embeddings) @ F.normalize(loss.weight).T
    return embeddings, labels, cosine


def test_arcface_target_logit_is_s_cos_theta_plus_m_and_others_unchanged():
    loss = make_loss("arcface", 16, 4)
    assert (loss.scale, loss.m1, loss.m2, loss.m3) == (64.0, 1.0, 0.5, 0.0)
    embeddings, labels, cosine = _setup(loss)
    logits = loss.logits(embeddings, labels)
    rows = torch.arange(6)
    theta = torch.acos(cosine[rows, labels])
    assert torch.allclose(logits[rows, labels], 64 * torch.cos(theta + 0.5), atol=1e-4)
    mask = torch.ones_like(cosine, dtype=torch.bool)
    mask[rows, labels] = False
    assert torch.allclose(logits[mask], 64 * cosine[mask], atol=1e-4)


def test_cosface_target_logit_is_s_times_cos_minus_m():
    loss = make_loss("cosface", 16, 4)
    embeddings, labels, cosine = _setup(loss)
    rows = torch.arange(6)
    logits = loss.logits(embeddings, labels)
    assert torch.allclose(logits[rows, labels], 64 * (cosine[rows, labels] - 0.4), atol=1e-4)


def test_combined_margin_reduces_to_arcface_cosface_and_normalised_softmax():
    arc, cos = make_loss("arcface", 16, 4), make_loss("cosface", 16, 4)
    embeddings, labels, _ = _setup(arc)
    for m, reference in (((1.0, 0.5, 0.0), arc), ((1.0, 0.0, 0.4), cos)):
        combined = make_loss("combined", 16, 4, margins=m)
        combined.weight.data.copy_(arc.weight.data)
        reference.weight.data.copy_(arc.weight.data)
        assert torch.allclose(combined.logits(embeddings, labels), reference.logits(embeddings, labels))
    plain = MarginLoss(16, 4, 64.0, 1.0, 0.0, 0.0)
    plain.weight.data.copy_(arc.weight.data)
    assert torch.allclose(plain.logits(embeddings, labels), plain.logits(embeddings))
    # the general form: cos(m1 * theta + m2) - m3
    general = MarginLoss(16, 4, 30.0, 1.2, 0.1, 0.05)
    cosine = torch.tensor([0.9, 0.3, -0.2])
    expected = torch.cos(1.2 * torch.acos(cosine) + 0.1) - 0.05
    assert torch.allclose(general.target_logit(cosine), expected, atol=1e-5)


def test_arcface_target_logit_keeps_decreasing_past_pi():
    loss = make_loss("arcface", 16, 4)
    cosine = torch.linspace(-0.999, 0.999, 400)
    target = loss.target_logit(cosine)
    assert torch.all(target[1:] >= target[:-1] - 1e-6)  # monotone in cos(theta): a worse angle never pays
    limit = math.cos(math.pi - 0.5)
    at = torch.tensor([limit - 1e-4, limit + 1e-4])
    assert abs(loss.target_logit(at)[0] - loss.target_logit(at)[1]) < 1e-3  # continuous at the switch


def test_losses_train_a_separable_problem_and_softmax_has_bias():
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(3, 8)) * 3
    labels = torch.arange(3).repeat(20)
    embeddings = centres[labels] + 0.3 * torch.randn(60, 8)
    for name in ("arcface", "cosface", "softmax"):
        loss = make_loss(name, 8, 3)
        optimizer = torch.optim.SGD(loss.parameters(), lr=0.5)
        first = None
        for _ in range(50):
            value, logits = loss(embeddings, labels)
            first = first if first is not None else value.item()
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        assert value.item() < first
        assert (logits.argmax(1) == labels).float().mean() > 0.9
    assert isinstance(make_loss("softmax", 8, 3), SoftmaxLoss)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("triplet", 8, 3)


def test_margin_warmup_schedule_is_linear_from_zero_to_one():
    assert [margin_fraction(step, 4) for step in (0, 1, 2, 3, 4, 9)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert margin_fraction(0, 0) == 1.0  # no warm-up: the full margin from the first step


def test_margin_fraction_scales_every_margin():
    arc = make_loss("arcface", 16, 4)
    embeddings, labels, cosine = _setup(arc)
    rows = torch.arange(6)
    theta = torch.acos(cosine[rows, labels])
    arc.margin_fraction = 0.5
    assert torch.allclose(
        arc.logits(embeddings, labels)[rows, labels], 64 * torch.cos(theta + 0.25), atol=1e-4
    )
    arc.margin_fraction = 0.0  # no margin: the normalised softmax
    assert torch.allclose(arc.logits(embeddings, labels), arc.logits(embeddings), atol=1e-5)
    general = MarginLoss(16, 4, 30.0, 1.2, 0.1, 0.05)
    general.margin_fraction = 0.5
    assert general.effective_margins() == pytest.approx((1.1, 0.05, 0.025))
    cosine = torch.tensor([0.9, 0.3, -0.2])
    expected = torch.cos(1.1 * torch.acos(cosine) + 0.05) - 0.025
    assert torch.allclose(general.target_logit(cosine), expected, atol=1e-5)


def test_easy_margin_applies_the_margin_only_where_cos_is_positive():
    easy = make_loss("arcface", 16, 4, easy_margin=True)
    hard = make_loss("arcface", 16, 4)
    cosine = torch.tensor([0.95, 0.4, 0.01, -0.01, -0.6, -0.95])
    theta = torch.acos(cosine)
    expected = torch.where(cosine > 0, torch.cos(theta + 0.5), cosine)
    assert torch.allclose(easy.target_logit(cosine), expected, atol=1e-5)
    # the hard version keeps the margin (or its linear continuation) everywhere: always below easy
    assert torch.all(hard.target_logit(cosine)[cosine <= 0] < cosine[cosine <= 0])
    assert torch.allclose(hard.target_logit(cosine)[:3], easy.target_logit(cosine)[:3])
    cos_easy = make_loss("cosface", 16, 4, easy_margin=True)
    assert torch.allclose(cos_easy.target_logit(cosine), torch.where(cosine > 0, cosine - 0.4, cosine))
