"""A small real-image detection set with exact boxes, written as Pascal VOC (no network).

Objects cut from photos that scikit-image ships (the cat's face in ``chelsea``, the cup and saucer in
``coffee``, the rocket in ``rocket``, the coins in ``coins``, the astronaut's face in ``astronaut``) are
pasted at random sizes and places onto random crops of real photo backgrounds (scikit-image's grass, gravel,
brick, immunohistochemistry and Hubble deep field; scikit-learn's ``china.jpg`` and ``flower.jpg``). A box is
the pasted rectangle, so it is exact. Test images take their backgrounds from the right half of each
background photo and train images from the left half, and train and test use different coins: no test
background pixel or coin was seen in training.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from effnet.data.detection import DetectionData
from effnet.data.set_folders import set_settings, write_set_folder

# The 24 coins of scikit-image's `coins`, row by row (left, top, right, bottom).
# fmt: off
COIN_BOXES = (
    (20, 31, 69, 75), (79, 38, 122, 75), (130, 28, 181, 75), (191, 30, 241, 74), (256, 33, 298, 71),
    (305, 15, 365, 72), (23, 103, 68, 146), (83, 107, 123, 145), (133, 109, 174, 145), (185, 105, 227, 145),
    (246, 97, 296, 144), (317, 105, 357, 145), (25, 179, 63, 215), (80, 174, 124, 217), (135, 179, 174, 216),
    (189, 171, 236, 216), (252, 172, 297, 217), (315, 157, 380, 217), (18, 234, 75, 287), (92, 246, 136, 287),
    (145, 238, 200, 286), (220, 241, 269, 287), (277, 240, 327, 287), (335, 248, 381, 289),
)
# fmt: on
# class -> (scikit-image photo, crop boxes (left, top, right, bottom) of the object in it)
OBJECT_SOURCES: dict[str, tuple[str, tuple[tuple[int, int, int, int], ...]]] = {
    "cat": ("chelsea", ((80, 10, 380, 290),)),
    "cup": ("coffee", ((70, 10, 480, 395),)),
    "rocket": ("rocket", ((290, 115, 360, 410),)),
    "coin": ("coins", COIN_BOXES),  # even positions for train, odd for test
    "astronaut": ("astronaut", ((150, 15, 300, 200),)),
}
LABEL_NAMES: tuple[str, ...] = tuple(OBJECT_SOURCES)
BACKGROUND_SOURCES = (
    "grass",
    "gravel",
    "brick",
    "immunohistochemistry",
    "hubble_deep_field",
    "china",
    "flower",
)
MAX_OBJECTS = 4
_MIN_SIDE, _MAX_SIDE = 32, 160  # object's long side in pixels, at image_size 320 (scaled with it)
_MAX_OVERLAP = 0.1  # a new object covers at most this fraction of an earlier one (and the other way round)
_MANIFEST = "detection_set.json"


def write_detection_set(
    out_dir: str | os.PathLike,
    train: int = 600,
    test: int = 150,
    seed: int = 0,
    image_size: int = 320,
    max_objects: int = MAX_OBJECTS,
    jpeg_quality: int = 90,
) -> Path:
    """Write ``train`` + ``test`` square JPEG images of ``image_size`` pixels with 0..``max_objects``
    objects of 5 classes (`LABEL_NAMES`) each, as Pascal VOC, and return ``out_dir``::

        out_dir/label_map.txt                 one class name per line, in label order
        out_dir/train/images/00000.jpg ...    out_dir/train/annotations/00000.xml ...
        out_dir/test/images/...               out_dir/test/annotations/...
        (each split folder also holds a copy of label_map.txt)

    Read it with `load_detection_set` (or ``DetectionData.from_pascal_voc(out_dir / "train" / "images",
    out_dir / "train" / "annotations", out_dir / "label_map.txt")``). The same arguments give the same
    bytes. The set is written to a temporary folder and moved into place when complete; when ``out_dir``
    already holds a set written with the same arguments it is returned as it is. Needs scikit-image.
    """
    settings = set_settings(
        "write_detection_set", train, test, seed, image_size, max_objects, jpeg_quality, LABEL_NAMES
    )

    def fill(folder: Path) -> None:
        sources = load_sources()
        labels_text = "".join(f"{name}\n" for name in LABEL_NAMES)
        (folder / "label_map.txt").write_text(labels_text)
        for split in ("train", "test"):
            (folder / split / "images").mkdir(parents=True)
            (folder / split / "annotations").mkdir()
            (folder / split / "label_map.txt").write_text(labels_text)
            count = train if split == "train" else test
            generated = iter_detection_images(split, count, seed, image_size, max_objects, sources)
            for index, (image, boxes, labels) in enumerate(generated):
                name = f"{index:05d}"
                image.save(folder / split / "images" / f"{name}.jpg", quality=jpeg_quality)
                _write_voc(
                    folder / split / "annotations" / f"{name}.xml", f"{name}.jpg", image_size, boxes, labels
                )

    return write_set_folder(out_dir, settings, _MANIFEST, "detection", fill)


def load_detection_set(out_dir: str | os.PathLike) -> tuple[DetectionData, DetectionData]:
    """(train, test) `DetectionData` of a set that `write_detection_set` wrote to ``out_dir``."""
    root = Path(out_dir)
    if not (root / "label_map.txt").is_file():
        raise FileNotFoundError(
            f"{root}: no label_map.txt; expected a folder written by write_detection_set "
            "(effnet data detection)"
        )
    parts = []
    for split in ("train", "test"):
        if not any((root / split / "annotations").glob("*.xml")):  # written with 0 images of this split
            parts.append(DetectionData([], LABEL_NAMES))
            continue
        annotations = root / split / "annotations"
        parts.append(
            DetectionData.from_pascal_voc(root / split / "images", annotations, root / "label_map.txt")
        )
    return parts[0], parts[1]


def iter_detection_images(
    split: str,
    count: int,
    seed: int = 0,
    image_size: int = 320,
    max_objects: int = MAX_OBJECTS,
    sources: tuple | None = None,
) -> Iterator[tuple[Image.Image, list[tuple[int, int, int, int]], list[int]]]:
    """Yield ``count`` (RGB image, boxes [(xmin, ymin, xmax, ymax)], label indices) of ``split`` ("train" or
    "test"), as `write_detection_set` writes them: each split draws from its own generator seeded with
    (``seed``, split), so the train images do not depend on ``test`` and the other way round."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    objects, backgrounds = sources or load_sources()
    part = 0 if split == "train" else 1
    rng = np.random.default_rng([seed, part])
    split_objects = {name: crops[part::2] or crops for name, crops in objects.items()}
    split_backgrounds = [photo_half(photo, part) for photo in backgrounds]
    for _ in range(count):
        yield _compose(rng, split_objects, split_backgrounds, image_size, max_objects)


def load_sources() -> tuple[dict[str, list[Image.Image]], list[Image.Image]]:
    try:
        from skimage import data as skimage_data
    except ImportError as error:
        raise ImportError(
            "the detection set needs scikit-image: pip install scikit-image (or effnet[dev])"
        ) from error
    from sklearn.datasets import load_sample_image

    objects = {}
    for label, (photo_name, crops) in OBJECT_SOURCES.items():
        photo = Image.fromarray(getattr(skimage_data, photo_name)()).convert("RGB")
        objects[label] = [photo.crop(box) for box in crops]
    backgrounds = []
    for name in BACKGROUND_SOURCES:
        pixels = (
            load_sample_image(f"{name}.jpg") if name in ("china", "flower") else getattr(skimage_data, name)()
        )
        backgrounds.append(Image.fromarray(pixels).convert("RGB"))
    return objects, backgrounds


def photo_half(photo: Image.Image, part: int) -> Image.Image:
    half = photo.width // 2
    return photo.crop((part * half, 0, part * half + half, photo.height))


def _compose(
    rng: np.random.Generator,
    objects: dict[str, list[Image.Image]],
    backgrounds: list[Image.Image],
    size: int,
    max_objects: int,
) -> tuple[Image.Image, list[tuple[int, int, int, int]], list[int]]:
    canvas = background_crop(rng, backgrounds, size)
    boxes: list[tuple[int, int, int, int]] = []
    labels: list[int] = []
    for piece, box, label in place_objects(rng, objects, size, max_objects):
        canvas.paste(piece, box[:2])
        boxes.append(box)
        labels.append(label)
    return canvas, boxes, labels


def background_crop(rng: np.random.Generator, backgrounds: list[Image.Image], size: int) -> Image.Image:
    """A random square crop of one of ``backgrounds``, resized to ``size``, mirrored half the time."""
    photo = backgrounds[int(rng.integers(len(backgrounds)))]
    side = int(min(photo.size) * rng.uniform(0.5, 1.0))
    left = int(rng.integers(0, photo.width - side + 1))
    top = int(rng.integers(0, photo.height - side + 1))
    canvas = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return canvas


def place_objects(
    rng: np.random.Generator, objects: dict[str, list[Image.Image]], size: int, max_objects: int
) -> Iterator[tuple[Image.Image, tuple[int, int, int, int], int]]:
    """0..``max_objects`` (object image, box where it goes, label index): a random crop of a random class at
    a random size and aspect, placed where it covers at most `_MAX_OVERLAP` of an earlier one, mirrored half
    the time, its brightness jittered. The caller pastes them in order."""
    boxes: list[tuple[int, int, int, int]] = []
    scale = size / 320
    for _ in range(int(rng.integers(0, max_objects + 1))):
        label = int(rng.integers(len(LABEL_NAMES)))
        crops = objects[LABEL_NAMES[label]]
        crop = crops[int(rng.integers(len(crops)))]
        long_side = rng.uniform(_MIN_SIDE, _MAX_SIDE) * scale
        stretch = rng.uniform(0.85, 1.15)  # aspect jitter
        factor = long_side / max(crop.width * stretch, crop.height)
        width = max(8, min(size, round(crop.width * stretch * factor)))
        height = max(8, min(size, round(crop.height * factor)))
        for _attempt in range(20):
            x, y = int(rng.integers(0, size - width + 1)), int(rng.integers(0, size - height + 1))
            box = (x, y, x + width, y + height)
            if all(_overlap(box, other) <= _MAX_OVERLAP for other in boxes):
                break
        else:
            continue  # no free place for it: the image gets fewer objects
        piece = crop.resize((width, height), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        gain = rng.uniform(0.8, 1.2)
        piece = Image.fromarray(np.clip(np.asarray(piece, dtype=np.float32) * gain, 0, 255).astype(np.uint8))
        boxes.append(box)
        yield piece, box, label


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The larger of (intersection / area of a) and (intersection / area of b)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller


def _write_voc(path: Path, filename: str, size: int, boxes: list, labels: list[int]) -> None:
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "filename").text = filename
    size_element = ElementTree.SubElement(root, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ElementTree.SubElement(size_element, tag).text = str(value)
    for box, label in zip(boxes, labels, strict=True):
        element = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(element, "name").text = LABEL_NAMES[label]
        ElementTree.SubElement(element, "difficult").text = "0"
        box_element = ElementTree.SubElement(element, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ElementTree.SubElement(box_element, tag).text = str(value)
    ElementTree.indent(root)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
