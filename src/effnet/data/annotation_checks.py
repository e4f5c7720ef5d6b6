"""The checks every detection reader shares: is the image readable and what is its displayed size, is each
box usable, and what is reported (see `effnet.data.detection_readers` for the rules)."""

from __future__ import annotations

import logging
import math
import os
import stat
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from effnet.data.detection import DetectionData, DetectionSample, SkippedAnnotation
from effnet.data.images import non_regular_reason

logger = logging.getLogger("effnet.data.detection")

_SHOWN = 5  # entries listed by name in the summary warning
_CLIP_TOLERANCE = 1.0  # pixels: annotation tools round box edges onto the border; clip that quietly
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError)


@dataclass
class RawObject:
    """One object as an annotation file gives it, before any check: its label name, the four coordinate
    values as written (strings or numbers), and where it is (file, and e.g. "object 2" or "line 14")."""

    label: str
    values: Sequence[Any]
    file: str
    where: str
    normalized: bool = False  # coordinates as fractions of the image size (Model Maker CSV)
    xywh: bool = False  # (x, y, width, height) (COCO) rather than (xmin, ymin, xmax, ymax)


def displayed_size(path: str) -> tuple[int, int]:
    """(width, height) of the image file as displayed (EXIF orientation applied), from its header only.
    Raises ValueError with the reason when it is not a readable image file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError("image file not found") from None
    except OSError as err:
        raise ValueError(err.strerror or type(err).__name__) from None
    if not stat.S_ISREG(mode):
        raise ValueError(non_regular_reason(mode))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                width, height = image.size
                try:
                    orientation = int(image.getexif().get(0x0112, 1))  # 0x0112: EXIF Orientation
                except Exception:  # a broken EXIF block: the decoder treats the image as upright too
                    orientation = 1
        except UnidentifiedImageError:
            if os.path.getsize(path) == 0:
                raise ValueError("empty file, 0 bytes") from None
            raise ValueError("not an image format Pillow recognizes") from None
        except _HEADER_ERRORS as err:
            raise ValueError(f"corrupt image header: {err or type(err).__name__}") from None
    if width < 1 or height < 1:
        raise ValueError(f"{width}x{height} pixels, an empty image")
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _stored_is_rotated(path: str) -> bool:
    try:
        with Image.open(path) as image:
            return int(image.getexif().get(0x0112, 1)) in (5, 6, 7, 8)
    except Exception:
        return False


def parse_number(text: Any) -> float | None:
    """``text`` (a string or a number) as a finite float, or None."""
    if isinstance(text, bool) or text is None:
        return None
    try:
        value = float(text.strip() if isinstance(text, str) else text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _shown(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{value:g}" for value in values) + ")"


class AnnotationReader:
    """Turns (image, raw objects) pairs into `DetectionSample` s, keeping what it leaves out and why."""

    def __init__(self, label_names: list[str], label_source: str = "the label map") -> None:
        self.label_names = label_names
        self.label_index = {name: index for index, name in enumerate(label_names)}
        self.label_source = label_source
        self.samples: list[DetectionSample] = []
        self.skipped: list[SkippedAnnotation] = []
        self.clipped: list[SkippedAnnotation] = []
        self.images_left_out = 0
        self.objects_dropped = 0
        self.negatives = 0
        self.known_objects = 0
        self.unknown_labels: Counter[str] = Counter()
        self.listed: dict[str, str] = {}  # image path -> where it was first listed

    def leave_out(self, path: str, reason: str, image: bool = True) -> None:
        self.skipped.append(SkippedAnnotation(os.fspath(path), reason))
        if image:
            self.images_left_out += 1
        else:
            self.objects_dropped += 1

    def add(
        self,
        image_path: str,
        objects: list[RawObject],
        listed_in: str,
        stated_size: tuple[int, int] | None = None,
    ) -> bool:
        """Check the image and its objects; keep the sample when the image is usable. Returns whether kept."""
        key = os.path.normpath(os.path.abspath(image_path))
        if key in self.listed:
            self.leave_out(listed_in, f"{image_path} is already annotated in {self.listed[key]}; skipped")
            return False
        self.listed[key] = listed_in
        try:
            width, height = displayed_size(image_path)
        except ValueError as err:
            self.leave_out(image_path, f"cannot read ({err}); image skipped (listed in {listed_in})")
            return False
        if stated_size and stated_size != (width, height):
            self.leave_out(
                image_path, self._size_mismatch(image_path, stated_size, (width, height), listed_in)
            )
            return False
        boxes, labels = [], []
        for raw in objects:
            box = self._box(raw, width, height)
            if box is None:
                continue
            label = self.label_index[raw.label]
            if any(
                label == other and np.array_equal(box, seen)
                for seen, other in zip(boxes, labels, strict=True)
            ):
                self.leave_out(
                    raw.file, f"{raw.where} ({raw.label!r}): repeats an earlier object; dropped", False
                )
                continue
            boxes.append(box)
            labels.append(label)
        self.negatives += not boxes
        self.samples.append(
            DetectionSample(
                path=image_path,
                boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
                labels=np.array(labels, dtype=np.int64),
                width=width,
                height=height,
            )
        )
        return True

    def _size_mismatch(
        self, image_path: str, stated: tuple[int, int], actual: tuple[int, int], listed_in: str
    ) -> str:
        found = (
            f"{listed_in} gives its size as {stated[0]}x{stated[1]} but it displays as "
            f"{actual[0]}x{actual[1]}"
        )
        if stated == actual[::-1] and _stored_is_rotated(image_path):
            return (
                f"{found} (its EXIF orientation rotates it); boxes must refer to the image as displayed: "
                "re-save it with the rotation applied (PIL.ImageOps.exif_transpose) and annotate that; "
                "image skipped"
            )
        return f"{found}; the boxes were drawn on another picture: fix the size or re-annotate; image skipped"

    def _box(self, raw: RawObject, width: int, height: int) -> np.ndarray | None:
        what = f"{raw.where} ({raw.label!r})"
        if raw.label not in self.label_index:
            self.unknown_labels[raw.label] += 1
            reason = "has no label" if not raw.label else f"label {raw.label!r} is not in {self.label_source}"
            self.leave_out(raw.file, f"{raw.where}: {reason} {self.label_names}; object dropped", False)
            return None
        self.known_objects += 1
        values = [parse_number(value) for value in raw.values]
        if len(values) != 4 or any(value is None for value in values):
            shown = ", ".join(repr(value) for value in raw.values)
            self.leave_out(
                raw.file, f"{what}: coordinates ({shown}) are not 4 finite numbers; object dropped", False
            )
            return None
        if raw.xywh:
            values = [values[0], values[1], values[0] + values[2], values[1] + values[3]]
        if raw.normalized:
            values = [values[0] * width, values[1] * height, values[2] * width, values[3] * height]
        xmin, ymin, xmax, ymax = values
        if xmin >= xmax or ymin >= ymax:
            axis = "x" if xmin >= xmax else "y"
            low, high = (raw.values[0], raw.values[2]) if axis == "x" else (raw.values[1], raw.values[3])
            if raw.xywh:
                reason = (
                    f"{'width' if axis == 'x' else 'height'} {raw.values[2 if axis == 'x' else 3]} is not > 0"
                )
            else:
                reason = f"{axis}min {low} >= {axis}max {high}"
            self.leave_out(raw.file, f"{what}: {reason} (an empty or reversed box); object dropped", False)
            return None
        if xmax <= 0 or ymax <= 0 or xmin >= width or ymin >= height:
            self.leave_out(
                raw.file,
                f"{what}: box {_shown(values)} lies outside the {width}x{height} image; object dropped",
                False,
            )
            return None
        box = np.array(values, dtype=np.float64)
        clipped = np.clip(box, 0, [width, height, width, height])
        if np.abs(clipped - box).max() > _CLIP_TOLERANCE:
            self.clipped.append(
                SkippedAnnotation(
                    raw.file,
                    f"{what}: box {_shown(values)} reaches past the {width}x{height} image; clipped to "
                    f"{_shown(clipped.tolist())}",
                )
            )
        return clipped.astype(np.float32)

    def build(self, cls: type[DetectionData]) -> DetectionData:
        data = cls(self.samples, self.label_names)
        data._skipped = list(self.skipped)
        data._clipped = list(self.clipped)
        return data


def check_usable(source: str, readers: Sequence[AnnotationReader], fix: str) -> None:
    """Raise when the readers kept nothing usable: no image, or objects whose labels are all unknown."""
    unknown: Counter[str] = sum((reader.unknown_labels for reader in readers), Counter())
    known = sum(reader.known_objects for reader in readers)
    if unknown and not known:
        names = readers[0].label_names
        found = ", ".join(f"{name!r} ({count})" for name, count in unknown.most_common(8))
        raise ValueError(
            f"{source}: no object has a label in {readers[0].label_source} {names}; the labels found are "
            f"{found}; pass a label_map that names these classes"
        )
    if not any(reader.samples for reader in readers):
        skipped = [entry for reader in readers for entry in reader.skipped]
        example = f" (e.g. {skipped[0]})" if skipped else ""
        raise ValueError(f"{source}: no usable image: {len(skipped)} left out{example}; {fix}")


def report(source: str, readers: Sequence[AnnotationReader]) -> None:
    """One warning listing what was left out or clipped, one info line for negative images."""
    skipped = [entry for reader in readers for entry in reader.skipped]
    clipped = [entry for reader in readers for entry in reader.clipped]
    if skipped or clipped:
        images = sum(reader.images_left_out for reader in readers)
        objects = sum(reader.objects_dropped for reader in readers)
        entries = skipped + clipped
        listed = "\n  ".join(str(entry) for entry in entries[:_SHOWN])
        more = f"\n  ... and {len(entries) - _SHOWN} more" if len(entries) > _SHOWN else ""
        logger.warning(
            "%s: left out %d images and %d objects, clipped %d boxes to their image (all in data.skipped and "
            "data.clipped):\n  %s%s",
            source,
            images,
            objects,
            len(clipped),
            listed,
            more,
        )
    negatives = sum(reader.negatives for reader in readers)
    if negatives:
        logger.info(
            "%s: %d images have no objects; kept as negative (background-only) images", source, negatives
        )


def existing_folder(path: str | os.PathLike, what: str, fix: str) -> str:
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        found = "is a file" if os.path.exists(folder) else "folder not found"
        raise FileNotFoundError(f"{folder}: {found}; expected the {what}; {fix}")
    return folder
