"""`decode_batches`: images decoded by threads, a batch ahead, in input order, failures kept in place."""

import numpy as np
import pytest

from effnet.data import ImageDecodeError
from effnet.data.decoding import decode_batches


def fake_transform(image):
    if image == "broken":
        raise ImageDecodeError("broken", "cannot decode")
    return np.full((1, 2, 2), float(image), dtype=np.float32)


@pytest.mark.parametrize("threads", [0, 3])
def test_batches_keep_input_order_and_report_failures_in_place(threads):
    images = ["0", "1", "broken", "3", "4", "broken", "6"]
    batches = list(decode_batches(images, fake_transform, batch_size=3, num_threads=threads))
    assert [b.positions for b in batches] == [[0, 1], [3, 4], [6]]
    assert [[p for p, _ in b.failures] for b in batches] == [[2], [5], []]
    assert [b.images[:, 0, 0, 0].tolist() for b in batches] == [[0.0, 1.0], [3.0, 4.0], [6.0]]
    all_broken = list(decode_batches(["broken"], fake_transform, batch_size=2, num_threads=threads))
    assert all_broken[0].images is None and all_broken[0].failures[0][0] == 0


def test_other_errors_propagate_and_bad_batch_size_is_named():
    with pytest.raises(ZeroDivisionError):
        list(decode_batches([1], lambda image: 1 / 0, num_threads=2))
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        list(decode_batches([1], fake_transform, batch_size=0))
