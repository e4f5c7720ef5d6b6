"""Training losses for embeddings: a classifier over the training identities whose logits are shaped so that
the embedding, not the classifier, has to separate them.

- ``arcface`` (s=64, m=0.5): the target logit is ``s * cos(theta + m)``, an additive angular margin.
- ``cosface`` (s=64, m=0.4): ``s * (cos(theta) - m)``, an additive cosine margin.
- ``combined`` (s, m1, m2, m3): ``s * (cos(m1 * theta + m2) - m3)``, insightface's CombinedMarginLoss;
  (1, 0.5, 0) is ArcFace, (1, 0, 0.4) CosFace, (1, 0, 0) the normalised softmax.
- ``softmax``: a plain linear classifier (with bias) on the raw embedding, the baseline the margins beat.

Non-target logits are ``s * cos(theta_j)`` for all margin losses. Embeddings and class centres are
L2-normalised inside the loss; the trained model outputs the raw embedding.

Two options for small training sets (on 7 digit identities a 3-epoch warm-up gave better verification; the
collapse of s=64 there came from unclipped gradients, which the trainer's ``clip_grad_norm`` prevents):

- margin warm-up: ``MarginLoss.margin_fraction`` in [0, 1] scales the margins (m1 towards 1, m2 and m3
  towards 0), so the trainer can ramp them linearly from none (the normalised softmax) to their value
  (`margin_fraction`).
- ``easy_margin`` (insightface's ArcFace option): the margin only applies where cos(theta) > 0; a target
  more than 90 degrees away keeps its plain cosine, so a badly placed sample is not pushed harder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from effnet.embedder.hparams import DEFAULT_MARGINS, DEFAULT_SCALE, LOSSES

_EPS = 1e-7  # keeps acos away from +-1, where its gradient is infinite


class MarginLoss(nn.Module):
    """Cross-entropy over ``s * (cos(m1 * theta + m2) - m3)`` for the target class, ``s * cos(theta)`` for the
    others; ``theta`` is the angle between the embedding and each class centre (a learned weight row)."""

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        scale: float = DEFAULT_SCALE,
        m1: float = 1.0,
        m2: float = 0.5,
        m3: float = 0.0,
        easy_margin: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a margin loss needs at least 2 training identities, got {num_classes}")
        if scale <= 0 or m1 <= 0 or m2 < 0 or m3 < 0:
            raise ValueError(f"need scale > 0, m1 > 0, m2 >= 0, m3 >= 0; got s={scale}, m=({m1}, {m2}, {m3})")
        self.scale, self.m1, self.m2, self.m3 = float(scale), float(m1), float(m2), float(m3)
        self.easy_margin = bool(easy_margin)
        self.margin_fraction = 1.0  # set by the trainer during a margin warm-up
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.normal_(self.weight, std=0.01)

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled cosine logits, with the margin applied to each row's ``labels`` class (if given)."""
        cosine = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1)).clamp(-1, 1)
        if labels is None:
            return self.scale * cosine
        rows = torch.arange(len(labels), device=labels.device)
        target = cosine[rows, labels]
        adjusted = self.target_logit(target)
        cosine = cosine.clone()
        cosine[rows, labels] = adjusted
        return self.scale * cosine

    def effective_margins(self) -> tuple[float, float, float]:
        """(m1, m2, m3) scaled by ``margin_fraction``: 0 gives (1, 0, 0), no margin; 1 the full margins."""
        f = self.margin_fraction
        return 1.0 + (self.m1 - 1.0) * f, self.m2 * f, self.m3 * f

    def target_logit(self, cosine: torch.Tensor) -> torch.Tensor:
        """cos(m1 * theta + m2) - m3 of the target cosines (margins scaled by ``margin_fraction``).

        Without ``easy_margin`` it is kept decreasing in theta: where m1 * theta + m2 passes pi, cos would
        rise again and reward a worse angle, so past that point the margin continues linearly (insightface's
        ``cos(theta) - m * sin(m)`` fallback, generalised). With ``easy_margin``, targets at cos(theta) <= 0
        keep their plain cosine (insightface's ``easy_margin``; for ArcFace this replaces the fallback)."""
        m1, m2, m3 = self.effective_margins()
        if m1 == 1.0 and m2 == 0.0:
            margined = cosine - m3
        else:
            theta = torch.acos(cosine.clamp(-1 + _EPS, 1 - _EPS))
            margined = torch.cos(m1 * theta + m2) - m3
            limit = (math.pi - m2) / m1  # the theta where the angle reaches pi
            if limit < math.pi:
                fallback = cosine - math.cos(limit) - 1.0 - m3  # continuous at theta = limit, slope of cos
                margined = torch.where(theta <= limit, margined, fallback)
        if self.easy_margin:
            return torch.where(cosine > 0, margined, cosine)
        return margined

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits without margin: their argmax is the predicted identity)."""
        logits = self.logits(embeddings, labels)
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            plain = self.logits(embeddings.detach())
        return loss, plain


class SoftmaxLoss(nn.Module):
    """Plain softmax: a linear classifier with bias on the raw embedding, cross-entropy."""

    def __init__(self, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(embedding_dim, num_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.fc(embeddings)
        return F.cross_entropy(logits, labels), logits.detach()


def make_loss(
    loss: str,
    embedding_dim: int,
    num_classes: int,
    scale: float | None = None,
    margins: tuple[float, float, float] | float | None = None,
    easy_margin: bool = False,
) -> nn.Module:
    """The loss module by name (`LOSSES`). ``margins``: ArcFace's m (a float), CosFace's m (a float), or
    (m1, m2, m3) for ``combined``; None gives insightface's defaults (0.5, 0.4; combined = ArcFace).
    ``easy_margin``: no margin for targets at cos(theta) <= 0 (margin losses only)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    if loss == "softmax":
        return SoftmaxLoss(embedding_dim, num_classes)
    scale = DEFAULT_SCALE if scale is None else scale
    if loss == "combined":
        m1, m2, m3 = DEFAULT_MARGINS["arcface"] if margins is None else tuple(margins)  # type: ignore[arg-type]
    elif margins is None:
        m1, m2, m3 = DEFAULT_MARGINS[loss]
    elif loss == "arcface":
        m1, m2, m3 = 1.0, float(margins), 0.0  # type: ignore[arg-type]
    else:
        m1, m2, m3 = 1.0, 0.0, float(margins)  # type: ignore[arg-type]
    return MarginLoss(embedding_dim, num_classes, scale, m1, m2, m3, easy_margin)


def margin_fraction(step: int, warmup_steps: int) -> float:
    """How much of the margin applies at optimizer step ``step`` (0-based) of a linear warm-up over
    ``warmup_steps`` steps: 0 at step 0, ``step / warmup_steps`` after, 1 from step ``warmup_steps`` on
    (and always 1 without a warm-up)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, max(0, step) / warmup_steps)
