"""Verification and identification metrics on embeddings (numpy + scikit-learn; no torch; I/O: the plot).

The protocol follows insightface's LFW evaluation (shared/reference/recognition.md): pairs scored by the
similarity of L2-normalised embeddings, 10-fold accuracy with the threshold chosen on the other 9 folds, and
TAR (true accept rate) at a fixed FAR (false accept rate). Scores here are cosine similarities (higher =
more alike), which order pairs exactly as insightface's squared distances do (``d^2 = 2 - 2 cos``); thresholds
are scanned over the observed scores instead of a fixed grid, so the best one is found exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FARS = (1e-3, 1e-4)


def normalize(embeddings: np.ndarray) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float64)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def pair_scores(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of each (i, j) row of ``pairs`` (indexes into ``embeddings``)."""
    unit = normalize(embeddings)
    pairs = np.asarray(pairs, dtype=np.int64)
    return np.einsum("ij,ij->i", unit[pairs[:, 0]], unit[pairs[:, 1]])


def _best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``score >= threshold`` on these pairs."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_same = scores[order], same[order]
    # accepting the top k pairs: true accepts among them + true rejects among the rest
    true_accepts = np.concatenate([[0], np.cumsum(sorted_same)])
    true_rejects = np.concatenate([[0], np.cumsum((~sorted_same)[::-1])])[::-1]
    correct = true_accepts + true_rejects
    # only cut between different scores (ties cannot be split by a threshold)
    valid = np.ones(len(correct), dtype=bool)
    valid[1:-1] = sorted_scores[:-1] != sorted_scores[1:]
    k = int(np.flatnonzero(valid)[np.argmax(correct[valid])])
    if k == 0:
        threshold = sorted_scores[0] + 1e-6
    elif k == len(scores):
        threshold = sorted_scores[-1] - 1e-6
    else:
        threshold = 0.5 * (sorted_scores[k - 1] + sorted_scores[k])
    return float(threshold), correct[k] / len(scores)


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> dict[str, float]:
    """Accuracy on each fold at the threshold that is best on the other folds (contiguous folds, no shuffle,
    as scikit-learn's ``KFold(shuffle=False)`` in insightface): mean, std and the mean threshold."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    if len(scores) < folds:
        raise ValueError(f"need at least {folds} pairs for {folds}-fold accuracy, got {len(scores)}")
    accuracies, thresholds = [], []
    for test in np.array_split(np.arange(len(scores)), folds):
        train = np.setdiff1d(np.arange(len(scores)), test)
        threshold, _ = _best_threshold(scores[train], same[train])
        accuracies.append(float(((scores[test] >= threshold) == same[test]).mean()))
        thresholds.append(threshold)
    return {
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "threshold": float(np.mean(thresholds)),
    }


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold): the most genuine pairs accepted while at most ``far`` of the impostor pairs are.

    With N impostor pairs the smallest FAR that can be told apart from 0 is 1/N: below it this is the TAR
    at zero false accepts (``num_impostor`` in the result of `verification_metrics` says N).
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(np.asarray(same, dtype=bool), scores)
    allowed = np.flatnonzero(fpr <= far)
    best = allowed[np.argmax(tpr[allowed])]
    return float(tpr[best]), float(min(thresholds[best], 1e9))


def verification_metrics(scores: np.ndarray, same: np.ndarray, folds: int = 10) -> dict:
    """accuracy / accuracy_std / threshold (k-fold), tar@far=1e-3, tar@far=1e-4, auc, eer and pair counts."""
    from sklearn.metrics import roc_auc_score, roc_curve

    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise ValueError("verification needs both genuine (same identity) and impostor pairs")
    result: dict = kfold_accuracy(scores, same, folds)
    for far in FARS:
        result[f"tar@far={far:.0e}".replace("e-0", "e-")] = tar_at_far(scores, same, far)[0]
    result["auc"] = float(roc_auc_score(same, scores))
    fpr, tpr, _ = roc_curve(same, scores)
    crossing = int(np.argmin(np.abs(fpr - (1 - tpr))))
    result["eer"] = float((fpr[crossing] + 1 - tpr[crossing]) / 2)
    result["num_pairs"] = len(scores)
    result["num_genuine"] = int(same.sum())
    result["num_impostor"] = int((~same).sum())
    return result


def identification(
    embeddings: np.ndarray, labels: np.ndarray, gallery_per_identity: int = 1, seed: int = 0, top_k=(1, 5)
) -> dict[str, float]:
    """Open-set identification: ``gallery_per_identity`` images of each identity (drawn with ``seed``) form
    the gallery, every other image is a probe; top-k accuracy of the probe's nearest gallery identities
    (cosine similarity, an identity scored by its best gallery image)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    gallery = np.zeros(len(labels), dtype=bool)
    for identity in np.unique(labels):
        members = np.flatnonzero(labels == identity)
        if len(members) <= gallery_per_identity:
            continue  # an identity with no probe left adds nothing
        gallery[rng.permutation(members)[:gallery_per_identity]] = True
    probes = np.flatnonzero(~gallery & np.isin(labels, labels[gallery]))
    if not len(probes):
        raise ValueError("identification needs identities with more images than gallery_per_identity")
    unit = normalize(embeddings)
    identities = np.unique(labels[gallery])
    similarity = unit[probes] @ unit[gallery].T
    per_identity = np.full((len(probes), len(identities)), -np.inf)
    for column, identity in enumerate(identities):
        per_identity[:, column] = similarity[:, labels[gallery] == identity].max(axis=1)
    ranking = identities[np.argsort(-per_identity, axis=1, kind="stable")]
    result = {}
    for k in top_k:
        hits = (ranking[:, : min(k, len(identities))] == labels[probes][:, None]).any(axis=1)
        result[f"top{k}"] = float(hits.mean())
    result["num_probes"] = len(probes)
    result["num_identities"] = len(identities)
    return result


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """ROC curves (TAR vs FAR, log FAR axis) of ``{name: (scores, same)}``, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    from effnet.checkpoint import atomic_path

    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    for name, (scores, same) in curves.items():
        fpr, tpr, _ = roc_curve(np.asarray(same, dtype=bool), scores)
        floor = 1.0 / max(1, int((~np.asarray(same, dtype=bool)).sum()))
        axis.plot(np.maximum(fpr, floor / 2), tpr, label=name)
    for far in FARS:
        axis.axvline(far, color="gray", linestyle=":", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_xlabel("FAR (false accept rate)")
    axis.set_ylabel("TAR (true accept rate)")
    axis.set_ylim(0, 1.01)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title(title or "Verification ROC")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return path
