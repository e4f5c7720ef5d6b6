"""Semantic-segmentation datasets: image files, each with a mask PNG of class indices.

`SegmentationData` is ``image_segmenter.DataLoader``:
``SegmentationData.from_folder("images", "masks", label_map=["background", "cat"]).split(0.8)``.

A mask is a PNG the size of its image whose pixel values are class indices: a palette ("P") PNG as Pascal
VOC writes them (the palette only colours the indices; the indices are the classes), an 8-bit gray PNG, or an
RGB PNG in the Pascal VOC colours (converted back to indices). 255 marks pixels to ignore (VOC's object
borders): they count in neither the loss nor the metrics.

The loader decodes every mask once, to check it (and reads each image's header for its displayed size,
EXIF orientation applied): a mask missing, of another size than its image, holding
indices outside the label map, or not decodable leaves its image out, with a message naming the file, what
was found and the fix, collected in `SegmentationData.skipped` and logged once. Nothing is dropped silently.

numpy and Pillow only (no torch).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from effnet.data.annotated import AnnotatedImages, SkippedAnnotation
from effnet.data.annotation_checks import displayed_size
from effnet.data.images import has_image_extension

log = logging.getLogger(__name__)

IGNORE_INDEX = 255
VOC_LABELS = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip
LABEL_MAP_FILES = ("label_map.txt", "labels.txt")


def voc_palette(count: int = 256) -> np.ndarray:
    """The Pascal VOC colour of each index, uint8 [count, 3]: the bits of the index spread over the high
    bits of R, G and B (index 1 is (128, 0, 0), 15 is (192, 128, 128); 255 is (224, 224, 192))."""
    colours = np.zeros((count, 3), dtype=np.uint8)
    for index in range(count):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours[index] = (r, g, b)
    return colours


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a uint8 index mask as a palette PNG in the Pascal VOC colours."""
    image = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="P")
    image.putpalette(voc_palette().reshape(-1).tolist())
    image.save(path)


class MaskError(ValueError):
    """A mask that cannot be used: names the file, the reason and the fix."""


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask file as uint8 class indices [H, W] (see the module docstring for the forms understood)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "P" or mode == "L":
                return np.array(image, dtype=np.uint8)
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                values = np.asarray(image)
                if values.min() < 0 or values.max() > 255:
                    raise MaskError(
                        f"{path}: a {mode} mask with values {int(values.min())}..{int(values.max())}; "
                        "class indices must be 0..254 (255: ignore); save it as an 8-bit PNG"
                    )
                return values.astype(np.uint8)
            if mode in ("RGB", "RGBA"):
                return _indices_from_voc_colours(np.asarray(image.convert("RGB")), path)
    except MaskError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        raise MaskError(f"{path}: cannot decode the mask ({error}); re-save it as a PNG") from None
    raise MaskError(f"{path}: a {mode} image is not a mask; save class indices as an 8-bit or palette PNG")


def _indices_from_voc_colours(rgb: np.ndarray, path: Path) -> np.ndarray:
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    palette = voc_palette().astype(np.int32)
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = dict(zip(palette_codes.tolist(), range(256), strict=True))
    found = np.unique(codes)
    unknown = [int(code) for code in found if int(code) not in lookup]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:3])
        raise MaskError(
            f"{path}: an RGB mask with colours that are not Pascal VOC's: {shown}; save masks as palette or "
            "8-bit PNGs of class indices"
        )
    mapping = np.zeros(len(found), dtype=np.uint8)
    for position, code in enumerate(found.tolist()):
        mapping[position] = lookup[code]
    return mapping[np.searchsorted(found, codes)]


def resolve_segmentation_labels(label_map: Any) -> list[str]:
    """Class names by index from ``label_map``: a list of names (index 0 first, usually "background"), a dict
    ``{0: "background", 1: "cat", ...}`` (indices 0..C-1, every one named), or a file with one name per
    line."""
    from effnet.data.label_maps import checked_names, resolve_label_map

    if isinstance(label_map, Mapping):
        try:
            by_index = {int(key): str(name) for key, name in label_map.items()}
        except (TypeError, ValueError):
            raise ValueError(
                f"label_map: keys must be class indices 0, 1, ...; got {list(label_map)}"
            ) from None
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(
                f"label_map: indices {sorted(by_index)} must be 0..{len(by_index) - 1}, each named once "
                "(0 is usually 'background'); a mask pixel's value is its class index"
            )
        return checked_names([by_index[i] for i in range(len(by_index))], "label_map")
    if isinstance(label_map, (str, os.PathLike)) or (isinstance(label_map, Sequence) and label_map):
        return resolve_label_map(label_map)
    raise TypeError(
        f"label_map must be a list of class names (index 0 first), a dict {{0: 'background', 1: 'cat'}} or a "
        f"file of one name per line; got {label_map!r}"
    )


@dataclass(frozen=True, eq=False)
class SegmentationSample:
    """One image file and its mask file, with the image's displayed ``width`` and ``height``. ``mask_path``
    None: an image without a mask (int8 calibration images)."""

    path: Path
    mask_path: Path | None
    width: int
    height: int

    def mask(self) -> np.ndarray:
        if self.mask_path is None:
            raise MaskError(f"{self.path}: has no mask (an image for calibration only)")
        return read_mask(self.mask_path)


class SegmentationData(AnnotatedImages[SegmentationSample]):
    """Images with index masks, plus the class names (``label_names[i]`` names mask value ``i``; 255 is
    ignored). Build one with `from_folder`; divide it with `split`. Also ``image_segmenter.DataLoader``."""

    def __init__(self, samples: Sequence[SegmentationSample], label_names: Sequence[str]) -> None:
        names = [str(name) for name in label_names]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError(
                "label_names must be at least 2 unique class names (index 0 usually 'background'); got "
                f"{names!r}"
            )
        if len(names) > IGNORE_INDEX:
            raise ValueError(
                f"at most {IGNORE_INDEX} classes fit uint8 masks (255 is ignore); got {len(names)}"
            )
        super().__init__(samples, names)

    @classmethod
    def from_folder(
        cls,
        images_dir: str | os.PathLike,
        masks_dir: str | os.PathLike,
        label_map: Any = None,
    ) -> SegmentationData:
        """Images in ``images_dir`` and masks in ``masks_dir`` paired by file name stem (``2007_000032.jpg``
        with ``2007_000032.png``), in sorted name order.

        ``label_map``: class names by mask value (see `resolve_segmentation_labels`). None reads
        ``label_map.txt`` (or ``labels.txt``) from ``masks_dir`` or the folder above it, else takes the 21
        Pascal VOC classes (``background`` .. ``tvmonitor``).
        """
        images_dir, masks_dir = Path(images_dir), Path(masks_dir)
        for argument, folder in (("images_dir", images_dir), ("masks_dir", masks_dir)):
            if not folder.is_dir():
                raise FileNotFoundError(f"{argument} {str(folder)!r}: no such folder")
        if label_map is None:
            label_map = next(
                (
                    folder / name
                    for folder in (masks_dir, masks_dir.parent)
                    for name in LABEL_MAP_FILES
                    if (folder / name).is_file()
                ),
                list(VOC_LABELS),
            )
        names = resolve_segmentation_labels(label_map)
        masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() == ".png"}
        images = [p for p in sorted(images_dir.iterdir()) if p.is_file() and has_image_extension(p)]
        samples, skipped = [], []
        for image_path in images:
            mask_path = masks.pop(image_path.stem, None)
            if mask_path is None:
                skipped.append(
                    SkippedAnnotation(
                        str(image_path),
                        f"no mask {image_path.stem}.png in {masks_dir}; image left out (add its mask, or "
                        "move the image out of the folder)",
                    )
                )
                continue
            problem = _check_pair(image_path, mask_path, len(names))
            if isinstance(problem, SkippedAnnotation):
                skipped.append(problem)
                continue
            samples.append(SegmentationSample(image_path, mask_path, *problem))
        for stem, mask_path in masks.items():
            skipped.append(
                SkippedAnnotation(str(mask_path), f"no image named {stem}.* in {images_dir}; mask not used")
            )
        data = cls(samples, names)
        data._skipped = skipped
        if skipped:
            log.warning(
                "%s: %d of %d files not used:\n  %s",
                images_dir,
                len(skipped),
                len(images) + len(masks),
                "\n  ".join(map(str, skipped[:10])) + ("\n  ..." if len(skipped) > 10 else ""),
            )
        if not samples:
            reasons = "; ".join(map(str, skipped[:3])) or f"no images in {images_dir}"
            raise ValueError(f"{images_dir}: no usable image with a mask ({reasons})")
        return data

    # -- views --------------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        skipped = f", skipped={len(self._skipped)}" if self._skipped else ""
        shown = ", ".join(map(repr, self._label_names[:6])) + (", ..." if self.num_classes > 6 else "")
        return f"SegmentationData(size={len(self)}, labels=[{shown}]{skipped})"


def _check_pair(image_path: Path, mask_path: Path, num_classes: int) -> tuple[int, int] | SkippedAnnotation:
    """The image's displayed (width, height), or why the pair cannot be used."""
    try:
        image_size = displayed_size(str(image_path))  # the header only: pixels are decoded in training
    except ValueError as error:
        return SkippedAnnotation(str(image_path), f"{error}; image left out (re-save it or remove it)")
    try:
        mask = read_mask(mask_path)
    except MaskError as error:
        return SkippedAnnotation(str(mask_path), f"{str(error).split(': ', 1)[1]}; image left out")
    if (mask.shape[1], mask.shape[0]) != image_size:
        return SkippedAnnotation(
            str(mask_path),
            f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} is "
            f"{image_size[0]}x{image_size[1]}; image left out (masks must match their image pixel for pixel)",
        )
    values = np.unique(mask)
    outside = [int(v) for v in values if v >= num_classes and v != IGNORE_INDEX]
    if outside:
        return SkippedAnnotation(
            str(mask_path),
            f"mask values {outside} are outside the label map (0..{num_classes - 1}, 255 ignore); image left "
            "out (extend the label map, or map those pixels to 255 to ignore them)",
        )
    return image_size
