"""Segmentation data: the generated set, VOC palette / gray / VOC-colour masks, and malformed folders."""

import shutil

import numpy as np
import pytest
from PIL import Image

from effnet.data.segmentation import (
    VOC_LABELS,
    SegmentationData,
    read_mask,
    resolve_segmentation_labels,
    voc_palette,
    write_mask,
)
from effnet.data.segmentation_set import LABEL_NAMES, iter_segmentation_images, load_segmentation_set


def test_voc_palette_has_the_published_colours():
    palette = voc_palette()
    # Pascal VOC devkit colours: aeroplane, cat, person; 255 (the border) cream
    assert palette[1].tolist() == [128, 0, 0]
    assert palette[8].tolist() == [64, 0, 0]
    assert palette[15].tolist() == [192, 128, 128]
    assert palette[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in palette.tolist()}) == 256


def test_generated_set_is_reproducible_with_exact_masks(segmentation_set):
    train, test = load_segmentation_set(segmentation_set)
    assert (len(train), len(test)) == (32, 12) and train.label_names == list(LABEL_NAMES)
    assert not train.skipped and not test.skipped
    _, first_mask = next(iter(iter_segmentation_images("train", 1, image_size=96)))
    np.testing.assert_array_equal(train[0].mask(), first_mask)  # the PNG holds the mask as generated
    values = np.concatenate([np.unique(s.mask()) for s in train])
    assert set(values.tolist()) == set(range(len(LABEL_NAMES)))  # every class occurs
    # the mask is the pasted cut-out: not a box (an ellipse leaves the box's corners to the background)
    mask = next(s.mask() for s in train if (s.mask() > 0).any())
    ys, xs = np.nonzero(mask == mask[mask > 0][0])
    box = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert box[0, 0] != mask[ys[0], xs[0]] or box[-1, -1] != mask[ys[0], xs[0]]


def test_palette_gray_and_voc_colour_masks_read_alike(tmp_path):
    mask = np.array([[0, 1, 15], [20, 255, 3]], dtype=np.uint8)
    write_mask(tmp_path / "palette.png", mask)
    Image.fromarray(mask, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(voc_palette()[mask]).save(tmp_path / "colours.png")
    for name in ("palette.png", "gray.png", "colours.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), mask)
    rgb = voc_palette()[mask]
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "odd.png")
    with pytest.raises(
        ValueError, match=r"odd.png: an RGB mask with colours that are not Pascal VOC's: \(1, 2, 3\)"
    ):
        read_mask(tmp_path / "odd.png")


def test_label_maps():
    assert resolve_segmentation_labels({1: "cat", 0: "background"}) == ["background", "cat"]
    assert resolve_segmentation_labels(["background", "cat"]) == ["background", "cat"]
    with pytest.raises(ValueError, match=r"indices \[0, 2\] must be 0..1"):
        resolve_segmentation_labels({0: "background", 2: "cat"})


def copy_split(root, tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    shutil.copytree(root / "train" / "images", images)
    shutil.copytree(root / "train" / "masks", masks)
    return images, masks


def test_malformed_pairs_are_left_out_each_with_its_reason(segmentation_set, tmp_path):
    images, masks = copy_split(segmentation_set, tmp_path)
    (masks / "00000.png").unlink()  # missing mask
    mask = read_mask(masks / "00001.png")
    write_mask(masks / "00001.png", mask[:-1])  # one row short
    bad = read_mask(masks / "00002.png")
    bad[0, 0] = 9
    write_mask(masks / "00002.png", bad)  # index 9 with 6 classes
    (masks / "00003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # not decodable
    (masks / "99999.png").write_bytes((masks / "00004.png").read_bytes())  # no image
    (images / "00005.jpg").write_bytes(b"")  # an empty image file
    data = SegmentationData.from_folder(images, masks, segmentation_set / "label_map.txt")
    assert len(data) == 32 - 5
    reasons = {str(s.path).rsplit("/", 1)[1]: s.reason for s in data.skipped}
    assert reasons["00000.jpg"].startswith("no mask 00000.png in")
    assert "mask is 96x95 but its image 00001.jpg is 96x96" in reasons["00001.png"]
    assert "mask values [9] are outside the label map (0..5, 255 ignore)" in reasons["00002.png"]
    assert "cannot decode the mask" in reasons["00003.png"]
    assert "no image named 99999.*" in reasons["99999.png"]
    assert reasons["00005.jpg"].startswith("empty file, 0 bytes; image left out")
    assert len(data.skipped) == 6  # nothing lost silently: every file not used is named


def test_label_map_defaults_and_errors(segmentation_set, tmp_path):
    images, masks = copy_split(segmentation_set, tmp_path)
    # no label map file near the masks: the 21 VOC classes (the generated indices fit them)
    assert SegmentationData.from_folder(images, masks).label_names == list(VOC_LABELS)
    shutil.copy(segmentation_set / "label_map.txt", tmp_path / "label_map.txt")
    assert SegmentationData.from_folder(images, masks).label_names == list(LABEL_NAMES)
    two = SegmentationData.from_folder(images, masks, ["background", "cat"])
    assert 0 < len(two) < 32 and len(two) + len(two.skipped) == 32
    assert all("outside the label map (0..1, 255 ignore)" in s.reason for s in two.skipped)
    with pytest.raises(FileNotFoundError, match="masks_dir 'nowhere': no such folder"):
        SegmentationData.from_folder(images, "nowhere")
    first, rest = SegmentationData.from_folder(images, masks).split(0.75)
    assert (len(first), len(rest)) == (24, 8)
    assert not {s.path for s in first} & {s.path for s in rest}
    for image in images.iterdir():
        image.unlink()
    with pytest.raises(ValueError, match=r"images: no usable image with a mask \(.*no image named 00000"):
        SegmentationData.from_folder(tmp_path / "images", masks)
