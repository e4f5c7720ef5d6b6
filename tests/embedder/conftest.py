"""The embedder tests' open-set split of real images: scikit-learn digits, 16 images each of identities
0-3 for training and 7-9 held out."""

import numpy as np
import pytest

from effnet.data import ImageDataset
from effnet.data.samples import write_digits_folder


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = write_digits_folder(tmp_path_factory.mktemp("digits"))
    data = ImageDataset.from_folder(root, shuffle=False)
    keep = np.concatenate([np.flatnonzero(data.labels == c)[:16] for c in (0, 1, 2, 3, 7, 8, 9)])
    paths, labels = [data.paths[i] for i in keep], data.labels[keep]
    seen = labels < 4
    train = ImageDataset.from_samples(
        [p for p, s in zip(paths, seen, strict=True) if s], labels[seen], list("0123")
    )
    held = ImageDataset.from_samples(
        [p for p, s in zip(paths, seen, strict=True) if not s], labels[~seen] - 7, list("789")
    )
    return root, train, held
