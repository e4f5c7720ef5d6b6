import sys

import numpy as np
import pytest
from PIL import Image

from effnet.cli import main
from effnet.data.dataset import ImageDataset
from effnet.data.samples import TEXTURE_SOURCES, write_digits_folder, write_textures_folder

pytest.importorskip("skimage.data")


def test_textures_split_photos_into_disjoint_halves(tmp_path, capsys):
    assert main(["data", "textures", str(tmp_path / "t"), "--per-class", "3"]) == 0
    assert "30 train and 30 test crops" in capsys.readouterr().out
    train = ImageDataset.from_folder(tmp_path / "t" / "train")
    test = ImageDataset.from_folder(tmp_path / "t" / "test")
    assert train.index_to_label == test.index_to_label == sorted(TEXTURE_SOURCES)
    assert len(train) == len(test) == 30
    # real, varied content: square crops that are not flat, and a train crop never equals a test crop
    crops = [np.asarray(Image.open(path)) for path in train.paths + test.paths]
    assert all(crop.shape[0] == crop.shape[1] >= 20 and crop.std() > 1 for crop in crops)
    train_bytes = {np.asarray(Image.open(path)).tobytes() for path in train.paths}
    assert not train_bytes & {np.asarray(Image.open(path)).tobytes() for path in test.paths}
    # the same seed writes the same crops; calling it again keeps what is there
    again = write_textures_folder(tmp_path / "u", per_class=3)
    first = sorted((tmp_path / "t").rglob("*.png"))
    second = sorted(again.rglob("*.png"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_textures_without_scikit_image_is_one_line_with_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # as if scikit-image were not installed
    assert main(["data", "textures", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "needs scikit-image: pip install scikit-image" in err and "Traceback" not in err


@pytest.mark.parametrize("limit", [0, -5, 2.5])
def test_digits_limit_must_be_a_positive_integer(tmp_path, limit):
    with pytest.raises(ValueError, match=f"limit must be an integer >= 1, got {limit}"):
        write_digits_folder(tmp_path, limit=limit)
    assert not any(tmp_path.iterdir())
