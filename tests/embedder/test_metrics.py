"""Verification metrics on hand-made scores with known answers, and pairs parsing."""

import numpy as np
import pytest

from effnet.embedder import identification, read_csv_pairs, read_lfw_pairs, sample_pairs, verification_metrics
from effnet.embedder.metrics import _best_threshold, kfold_accuracy, pair_scores, plot_roc, tar_at_far


def test_tar_at_far_on_a_handmade_score_set():
    # 1000 impostors with scores 0.000 .. 0.999, 10 genuine pairs at 0.9955 .. 1.0045
    impostor = np.arange(1000) / 1000
    genuine = 0.9955 + np.arange(10) / 1000
    scores = np.concatenate([impostor, genuine])
    same = np.concatenate([np.zeros(1000, bool), np.ones(10, bool)])
    # FAR <= 1e-3 allows one false accept (the 0.999 impostor): 7 genuine pairs (0.9985 up) pass
    tar, threshold = tar_at_far(scores, same, 1e-3)
    assert tar == pytest.approx(0.7) and threshold == pytest.approx(0.9985)  # the lowest score accepted
    # FAR <= 1e-4 allows none: only the 6 genuine pairs above 0.999
    assert tar_at_far(scores, same, 1e-4)[0] == pytest.approx(0.6)
    metrics = verification_metrics(scores, same)
    assert metrics["tar@far=1e-3"] == pytest.approx(0.7) and metrics["tar@far=1e-4"] == pytest.approx(0.6)
    assert metrics["num_impostor"] == 1000 and metrics["num_genuine"] == 10
    assert 0.99 < metrics["auc"] < 1.0


def test_best_threshold_and_ten_fold_selection():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    same = np.array([1, 1, 1, 0, 1, 0, 0, 0], bool)
    threshold, accuracy = _best_threshold(scores, same)
    assert accuracy == pytest.approx(7 / 8) and 0.4 < threshold <= 0.7
    # perfectly separable scores: every fold's threshold (chosen on the other folds) separates it too
    rng = np.random.default_rng(0)
    same = rng.random(200) < 0.5
    scores = np.where(same, 0.6 + 0.4 * rng.random(200), 0.5 * rng.random(200))
    result = kfold_accuracy(scores, same)
    assert result["accuracy"] == 1.0 and result["accuracy_std"] == 0.0 and 0.5 <= result["threshold"] <= 0.6
    # one fold made of flipped labels: that fold scores 0 (its threshold comes from the other nine)
    flipped = same.copy()
    flipped[:20] = ~flipped[:20]
    result = kfold_accuracy(scores, flipped)
    assert 0.85 <= result["accuracy"] <= 0.9 and result["accuracy_std"] > 0.25


def test_pair_scores_identification_and_roc_plot(tmp_path):
    embeddings = np.array([[1, 0], [2, 0.1], [0, 1], [0.1, 3], [-1, 0]], dtype=np.float32)
    assert pair_scores(embeddings, np.array([[0, 1], [0, 2]])) == pytest.approx([0.99875, 0.0], abs=1e-4)
    labels = np.array([0, 0, 1, 1, 2])
    result = identification(embeddings, labels, gallery_per_identity=1, seed=0)
    assert result["top1"] == 1.0 and result["num_probes"] == 2 and result["num_identities"] == 2
    path = plot_roc(
        {"a": (np.array([0.9, 0.1, 0.8, 0.3]), np.array([1, 0, 1, 0], bool))}, tmp_path / "roc.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lfw_pairs_both_line_formats_and_csv(tmp_path):
    for name, number in (("Ann", 1), ("Ann", 2), ("Bob", 1)):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{number:04d}.png").write_bytes(b"")
    (tmp_path / "pairs.txt").write_text("1\t2\nAnn\t1\t2\nAnn\t1\tBob\t1\n")
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    assert pairs.same.tolist() == [True, False]
    assert [pairs.paths[i].split("/")[-1] for i in pairs.pairs[0]] == ["Ann_0001.png", "Ann_0002.png"]
    assert [pairs.paths[i].split("/")[-1] for i in pairs.pairs[1]] == ["Ann_0001.png", "Bob_0001.png"]
    assert len(pairs.paths) == 3  # each image once
    (tmp_path / "bad.txt").write_text("Ann 1\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: expected"):
        read_lfw_pairs(tmp_path / "bad.txt")
    (tmp_path / "pairs.csv").write_text(
        "path1,path2,same\nAnn/Ann_0001.png,Bob/Bob_0001.png,0\na.png,b.png,1\n"
    )
    csv_pairs = read_csv_pairs(tmp_path / "pairs.csv")
    assert csv_pairs.same.tolist() == [False, True] and csv_pairs.paths[0] == str(
        tmp_path / "Ann/Ann_0001.png"
    )
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="path1,path2,same"):
        read_csv_pairs(tmp_path / "cols.csv")


def test_sampled_pairs_are_balanced_distinct_and_seeded():
    from effnet.data import ImageDataset

    labels = np.repeat(np.arange(4), 10)
    data = ImageDataset.from_samples([f"{i}.png" for i in range(40)], labels, list("abcd"))
    pairs = sample_pairs(data, 100, seed=3)
    assert pairs.same.sum() == 50 and (~pairs.same).sum() == 50
    assert np.array_equal(labels[pairs.pairs[:, 0]] == labels[pairs.pairs[:, 1]], pairs.same)
    assert len({tuple(p) for p in pairs.pairs}) == 100 and (pairs.pairs[:, 0] != pairs.pairs[:, 1]).all()
    assert np.array_equal(sample_pairs(data, 100, seed=3).pairs, pairs.pairs)
