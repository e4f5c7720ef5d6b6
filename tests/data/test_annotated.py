"""What detection and segmentation datasets share (`effnet.data.annotated`): views, split, skipped files."""

import pytest

from effnet.data.annotated import AnnotatedImages, SkippedAnnotation


def test_split_is_seeded_keeps_order_and_labels():
    data = AnnotatedImages(list(range(10)), ["a", "b"])
    first, rest = data.split(0.8, seed=3)
    assert (len(first), len(rest)) == (8, 2)
    assert sorted(first.samples + rest.samples) == list(range(10))
    assert first.samples == sorted(first.samples) and first.label_names == ["a", "b"]
    assert first.samples == data.split(0.8, seed=3)[0].samples
    with pytest.raises(ValueError, match="fraction must be between 0 and 1"):
        data.split(1.0)


def test_views_and_skipped():
    data = AnnotatedImages(["x", "y"], ["a"])
    assert (len(data), data.size, data[1], list(data), data.num_classes) == (2, 2, "y", ["x", "y"], 1)
    assert data.skipped == []
    assert str(SkippedAnnotation("labels.csv", "line 7: dropped")) == "labels.csv: line 7: dropped"
