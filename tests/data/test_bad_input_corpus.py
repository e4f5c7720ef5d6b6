"""The bad-input corpus (tests/fixtures/bad_images.py) through every entry point a user has: the folder
listing, `image_classifier.create`, `effnet train` and `effnet predict`. Every bad entry is named exactly once
with its reason and the run goes on; every good file is used; memory stays bounded; nothing hangs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bad_images import write_corpus
from deadline import deadline
from tiny_run import save_tiny_run

from effnet.cli.output import printable
from effnet.image_classifier import DataLoader, ModelSpec, create

skimage_data = pytest.importorskip("skimage.data")

PEAK_RSS_LIMIT = 1.5e9  # bytes; a 1 x 20000 PNG alone cost 5.6 GB before the decode budget
LISTING = {"symlink_loop", "symlink_dangling", "fifo", "unix_socket"}  # left out before any decode

# Runs a command in a child and reports the peak RSS of its whole process tree (decode workers included:
# a reaped child's peak is folded into its parent's) as the last line of stderr.
MEASURED = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], timeout=240)
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(root, skimage_data.chelsea())


def measured(argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, sys.executable, "-m", "effnet", *argv],
        cwd=cwd,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    *_, last = done.stderr.decode("utf-8", "replace").splitlines() or [""]
    assert last.startswith("peak_rss_kib"), done.stderr[-3000:]
    return done, int(last.split()[1]) * 1024


def test_corpus_has_at_least_50_kinds(corpus):
    _, kinds = corpus
    assert len({kind.name for kind in kinds}) == len(kinds) >= 50
    assert sum(kind.good for kind in kinds) >= 25 and sum(not kind.good for kind in kinds) >= 25


def test_from_folder_and_create_name_every_bad_file_once_and_use_every_good_one(corpus):
    root, kinds = corpus
    with deadline(180):
        data = DataLoader.from_folder(root)
        create(
            data,
            model_spec=ModelSpec("efficientnet_lite0", input_image_shape=(32, 32)),
            epochs=1,
            batch_size=8,
        )
    named = [(entry.path, entry.reason) for entry in data.left_out]
    named += [(skipped.path, skipped.reason) for skipped in data.skipped]
    by_path = {path: reason for path, reason in named}
    assert len(by_path) == len(named)  # each named once
    for kind in kinds:
        if kind.good:
            assert kind.path not in by_path, f"{kind.name}: {by_path.get(kind.path)}"
        else:
            assert kind.path in by_path, kind.name
            assert kind.reason in by_path[kind.path], (kind.name, by_path[kind.path])
    good = {kind.path for kind in kinds if kind.good}
    assert set(data.paths) - set(by_path) == good  # every good file listed and decoded
    assert set(by_path) == {kind.path for kind in kinds if not kind.good}


def test_effnet_train_lists_every_bad_file_in_skipped_txt_with_bounded_memory(corpus, tmp_path):
    root, kinds = corpus
    out = tmp_path / "run"
    argv = ["train", str(root), "--out", str(out), "--model", "efficientnet_lite0", "--image-size", "32"]
    argv += ["--epochs", "1", "--batch-size", "8", "--val-split", "0", "--test-split", "0"]
    done, peak = measured(argv, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 1e9:.2f} GB"
    bad = [kind for kind in kinds if not kind.good]
    assert f"{len(bad)} files skipped".encode() in done.stdout
    lines = (out / "skipped.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(bad)
    for kind in bad:
        [line] = [line for line in lines if line.startswith(printable(kind.path) + ": ")]
        assert kind.reason in line, (kind.name, line)
    used = json.loads((out / "splits.json").read_text())["train"]
    assert sorted(used) == sorted(kind.path for kind in kinds if kind.good)


def test_effnet_predict_names_every_bad_file_once_and_predicts_every_good_one(corpus, tmp_path):
    _, kinds = corpus
    run = save_tiny_run(tmp_path / "run")
    done, peak = measured(["predict", "--model", str(run), "--top", "1", *(k.path for k in kinds)], tmp_path)
    assert done.returncode == 1  # some files failed; the others were predicted
    assert peak < PEAK_RSS_LIMIT, f"peak RSS {peak / 1e9:.2f} GB"
    out = done.stdout.decode("utf-8").splitlines()
    err = done.stderr.decode("utf-8").splitlines()[:-1]
    assert all(line.startswith("effnet predict: ") for line in err), err
    for kind in kinds:
        shown = printable(kind.path)
        errors = [line for line in err if line.startswith(f"effnet predict: {shown}: ")]
        if kind.good:
            assert out.count(shown) == 1 and not errors, kind.name
        else:
            assert len(errors) == 1 and shown not in out, kind.name
            if kind.name not in LISTING:  # predict opens those itself: its own words (file not found ...)
                assert kind.reason in errors[0], (kind.name, errors[0])
    assert len(err) == sum(not kind.good for kind in kinds)
