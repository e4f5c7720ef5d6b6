"""A small real-image segmentation set with exact masks (no network).

The objects and backgrounds of `effnet.data.detection_set` (real objects cut from scikit-image's photos,
pasted onto crops of real photos; train and test from disjoint halves of each background photo and disjoint
coins), each object pasted through an elliptical cut-out: the mask is the set of pixels pasted, so it is
exact, and the shapes are not boxes. Later objects cover earlier ones, in the mask as in the image.
Masks are Pascal VOC palette PNGs: 0 background, 1..5 the classes of `LABEL_NAMES`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from effnet.data import detection_set
from effnet.data.segmentation import SegmentationData, write_mask
from effnet.data.set_folders import set_settings, write_set_folder

LABEL_NAMES: tuple[str, ...] = ("background", *detection_set.LABEL_NAMES)
_MANIFEST = "segmentation_set.json"


def write_segmentation_set(
    out_dir: str | os.PathLike,
    train: int = 300,
    test: int = 100,
    seed: int = 0,
    image_size: int = 256,
    max_objects: int = detection_set.MAX_OBJECTS,
    jpeg_quality: int = 90,
) -> Path:
    """Write ``train`` + ``test`` square JPEG images of ``image_size`` pixels, each with a mask, and return
    ``out_dir``::

        out_dir/label_map.txt                  background + 5 classes, one per line, in index order
        out_dir/train/images/00000.jpg ...     out_dir/train/masks/00000.png ...
        out_dir/test/images/...                out_dir/test/masks/...

    Read it with `load_segmentation_set` (or ``SegmentationData.from_folder(out_dir / "train" / "images",
    out_dir / "train" / "masks")``). The same arguments give the same bytes; the set is written to a
    temporary folder and moved into place when complete, and a folder holding a set written with the same
    arguments is returned as it is. Needs scikit-image.
    """
    settings = set_settings(
        "write_segmentation_set", train, test, seed, image_size, max_objects, jpeg_quality, LABEL_NAMES
    )

    def fill(folder: Path) -> None:
        sources = detection_set.load_sources()
        (folder / "label_map.txt").write_text("".join(f"{name}\n" for name in LABEL_NAMES))
        for split, count in (("train", train), ("test", test)):
            (folder / split / "images").mkdir(parents=True)
            (folder / split / "masks").mkdir()
            generated = iter_segmentation_images(split, count, seed, image_size, max_objects, sources)
            for index, (image, mask) in enumerate(generated):
                image.save(folder / split / "images" / f"{index:05d}.jpg", quality=jpeg_quality)
                write_mask(folder / split / "masks" / f"{index:05d}.png", mask)

    return write_set_folder(out_dir, settings, _MANIFEST, "segmentation", fill)


def load_segmentation_set(out_dir: str | os.PathLike) -> tuple[SegmentationData, SegmentationData]:
    """(train, test) `SegmentationData` of a set that `write_segmentation_set` wrote to ``out_dir``."""
    root = Path(out_dir)
    if not (root / _MANIFEST).is_file():
        raise FileNotFoundError(
            f"{root}: no {_MANIFEST}; expected a folder written by write_segmentation_set "
            "(effnet data segmentation)"
        )
    parts = []
    for split in ("train", "test"):
        if not any((root / split / "masks").glob("*.png")):
            parts.append(SegmentationData([], LABEL_NAMES))
            continue
        parts.append(
            SegmentationData.from_folder(
                root / split / "images", root / split / "masks", root / "label_map.txt"
            )
        )
    return parts[0], parts[1]


def iter_segmentation_images(
    split: str,
    count: int,
    seed: int = 0,
    image_size: int = 256,
    max_objects: int = detection_set.MAX_OBJECTS,
    sources: tuple | None = None,
) -> Iterator[tuple[Image.Image, np.ndarray]]:
    """Yield ``count`` (RGB image, uint8 mask [size, size]) of ``split`` ("train" or "test"), from a generator
    seeded with (``seed``, split, 1): not the detection set's images."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    objects, backgrounds = sources or detection_set.load_sources()
    part = 0 if split == "train" else 1
    rng = np.random.default_rng([seed, part, 1])
    split_objects = {name: crops[part::2] or crops for name, crops in objects.items()}
    split_backgrounds = [detection_set.photo_half(photo, part) for photo in backgrounds]
    for _ in range(count):
        canvas = detection_set.background_crop(rng, split_backgrounds, image_size)
        mask = np.zeros((image_size, image_size), dtype=np.uint8)
        for piece, box, label in detection_set.place_objects(rng, split_objects, image_size, max_objects):
            cutout = Image.new("L", piece.size, 0)
            ImageDraw.Draw(cutout).ellipse((0, 0, piece.width - 1, piece.height - 1), fill=255)
            canvas.paste(piece, box[:2], cutout)  # a binary cut-out: every pixel is the object's or not
            inside = np.asarray(cutout) > 0
            mask[box[1] : box[3], box[0] : box[2]][inside] = label + 1
        yield canvas, mask
