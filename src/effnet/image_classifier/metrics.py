"""Detailed classification metrics: top-k accuracy, per-class precision / recall / F1, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def detailed_metrics(
    logits: torch.Tensor, labels: torch.Tensor, names: Sequence[str], top_k: int = 5
) -> dict:
    """Metrics of predictions ``logits`` (N, C) against ``labels`` (N,), in the report's format."""
    predicted = logits.argmax(1)
    classes = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels.numpy(), predicted.numpy(), labels=classes, zero_division=0
    )
    top = {}
    for k in sorted({1, min(top_k, len(names))}):
        hits = (logits.topk(k, dim=1).indices == labels[:, None]).any(1)
        top[str(k)] = hits.float().mean().item()
    return {
        "loss": torch.nn.functional.cross_entropy(logits, labels).item(),
        "accuracy": (predicted == labels).float().mean().item(),
        "num_images": len(labels),
        "top_k_accuracy": top,
        "macro_f1": float(f1.mean()),
        "labels": list(names),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(labels.numpy(), predicted.numpy(), labels=classes).tolist(),
        "predictions": predicted.tolist(),
        "confidences": logits.float().softmax(1).max(1).values.tolist(),
    }
