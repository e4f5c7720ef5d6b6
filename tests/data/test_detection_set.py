"""write_detection_set: the built-in detection set (scikit-image objects pasted on real photos) read back with
from_pascal_voc gives exactly the boxes the generator placed; same seed, same bytes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from effnet.data.detection_set import (
    LABEL_NAMES,
    iter_detection_images,
    load_detection_set,
    write_detection_set,
)


def digest(root):
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return write_detection_set(
        tmp_path_factory.mktemp("set") / "shapes", train=24, test=8, seed=5, image_size=160
    )


def test_round_trip_gives_the_placed_boxes(small_set):
    train, test = load_detection_set(small_set)
    assert train.label_names == test.label_names == list(LABEL_NAMES)
    assert (len(train), len(test)) == (24, 8) and train.skipped == test.skipped == []
    for split, data in (("train", train), ("test", test)):
        placed = list(iter_detection_images(split, len(data), seed=5, image_size=160))
        for sample, (image, boxes, labels) in zip(data, placed, strict=True):
            assert (sample.width, sample.height) == image.size == (160, 160)
            np.testing.assert_array_equal(sample.boxes, np.array(boxes, np.float32).reshape(-1, 4))
            assert sample.labels.tolist() == labels
            assert len(labels) <= 4
            if boxes:
                sides = sample.boxes[:, 2:] - sample.boxes[:, :2]
                assert sides.max(axis=1).min() >= 32 * 160 / 320 - 1  # long side 32..160 px at 320
    counts = train.object_counts()
    assert sum(counts.values()) > 24 and min(counts.values()) > 0  # every class appears
    assert sum(len(s.labels) == 0 for s in train) > 0  # and some negative images


def test_same_seed_same_bytes_and_reuse(small_set, tmp_path):
    again = write_detection_set(tmp_path / "again", train=24, test=8, seed=5, image_size=160)
    assert digest(again) == digest(small_set)
    before = {p: p.stat().st_mtime_ns for p in again.rglob("*.jpg")}
    assert write_detection_set(again, train=24, test=8, seed=5, image_size=160) == again  # kept as it is
    assert before == {p: p.stat().st_mtime_ns for p in again.rglob("*.jpg")}
    with pytest.raises(FileExistsError, match="again: exists and is not a detection set written with these"):
        write_detection_set(again, train=24, test=8, seed=6, image_size=160)
    other = write_detection_set(tmp_path / "other", train=4, test=0, seed=6, image_size=160)
    assert digest(other)["train/images/00000.jpg"] != digest(small_set)["train/images/00000.jpg"]
    assert not list(tmp_path.glob(".*.partial"))  # the staging folders are gone


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="train must be an integer >= 0, got -1"):
        write_detection_set(tmp_path / "x", train=-1)
    with pytest.raises(ValueError, match="image_size must be an integer >= 64, got 10"):
        write_detection_set(tmp_path / "x", image_size=10)
    with pytest.raises(ValueError, match="train and test are both 0"):
        write_detection_set(tmp_path / "x", train=0, test=0)
