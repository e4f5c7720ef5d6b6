"""Reading detection annotations (Pascal VOC XML, Model Maker CSV, COCO JSON) into `DetectionData`.

What the readers do with input they cannot use, the same for all three formats:

- an image file that is missing, not a regular file, or whose header Pillow cannot read: the image is left
  out, named with the reason and where it was listed;
- an annotation file that is not valid XML (VOC), a CSV row with too few columns or an unknown set: that
  file or row is left out; a COCO file that is not valid JSON is the whole input, so it raises;
- an object whose label is not in the label map, whose coordinates are not numbers, whose box is empty or
  reversed (xmin >= xmax or ymin >= ymax), lies wholly outside the image, or repeats an earlier object of
  the same image exactly: that object is dropped, the image kept;
- a box that reaches more than a pixel past the image: clipped to it and kept (`DetectionData.clipped`);
- an image listed twice (two XML files, two COCO entries, two CSV sets): the first listing is kept;
- an image with no objects: kept as a negative (background-only) image;
- an annotated size that differs from the image's displayed size (EXIF orientation applied): the image is
  left out, since its boxes were drawn on another picture.

Everything left out is one `SkippedAnnotation` (file, reason) in `DetectionData.skipped`, and one warning
lists them after reading. Input with nothing usable (no annotations folder, no image left, no object of a
known label anywhere) raises a one-line FileNotFoundError or ValueError naming the path and the fix.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import stat
import warnings
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from effnet.data.detection import DetectionData, DetectionSample, SkippedAnnotation
from effnet.data.images import IMAGE_EXTENSIONS, non_regular_reason
from effnet.validation import check_integer

logger = logging.getLogger("effnet.data.detection")

_SHOWN = 5  # entries listed by name in the summary warning
_CLIP_TOLERANCE = 1.0  # pixels: annotation tools round box edges onto the border; clip that quietly
_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError)
_LABEL_MAP_FORMS = "a dict {1: 'cat', 2: 'dog'}, a list of names, or the path of a label map file"
CSV_SETS = {
    "TRAINING": "TRAINING",
    "TRAIN": "TRAINING",
    "UNASSIGNED": "TRAINING",
    "VALIDATION": "VALIDATION",
    "VALIDATE": "VALIDATION",
    "TEST": "TEST",
}
_CSV_LAYOUT = "set,image,label,xmin,ymin,,,xmax,ymax,, (coordinates as fractions 0..1)"


# -- label maps ---------------------------------------------------------------------------------------------


def resolve_label_map(label_map: Any) -> list[str]:
    """Class names in label order from a Model Maker ``label_map``: a dict ``{id: name}`` (ids from 1, in id
    order; ``0: 'background'`` is allowed and ignored), a list of names, or a file path (see
    `read_label_map_file`)."""
    if isinstance(label_map, Mapping):
        return _names_from_ids(dict(label_map), "label_map")
    if isinstance(label_map, (str, os.PathLike)):
        path = os.fspath(label_map)
        if os.path.isfile(path):
            return read_label_map_file(path)
        raise FileNotFoundError(f"label_map {path!r}: no such file; pass {_LABEL_MAP_FORMS}")
    if isinstance(label_map, Sequence) and label_map:
        return _checked_names([str(name) for name in label_map], "label_map")
    raise TypeError(f"label_map must be {_LABEL_MAP_FORMS}; got {label_map!r}")


def read_label_map_file(path: str | os.PathLike) -> list[str]:
    """Class names from a label map file: ``.json`` (a dict ``{"1": "cat"}`` or a list), ``.yaml``/``.yml``
    (``1: cat`` lines, as Model Maker writes them), ``.pbtxt`` (TF Object Detection ``item { id: 1 name:
    'cat' }``), anything else one name per line."""
    path = os.fspath(path)
    with open(path, encoding="utf-8-sig") as file:
        text = file.read()
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno}); fix the file") from None
        if isinstance(data, dict):
            return _names_from_ids(data, path)
        if isinstance(data, list) and data:
            return _checked_names([str(name) for name in data], path)
        raise ValueError(f'{path}: expected a JSON object {{"1": "cat"}} or a list of names')
    if suffix in (".yaml", ".yml"):
        pairs = re.findall(r"^\s*(\d+)\s*:\s*['\"]?(.*?)['\"]?\s*$", text, flags=re.MULTILINE)
        if not pairs:
            raise ValueError(f"{path}: no 'id: name' lines (e.g. '1: cat'); fix the file")
        return _names_from_ids(dict(pairs), path)
    if suffix == ".pbtxt":
        pairs = {}
        for item in re.findall(r"item\s*\{(.*?)\}", text, flags=re.DOTALL):
            found_id = re.search(r"\bid\s*:\s*(\d+)", item)
            found_name = re.search(r"\b(?:display_)?name\s*:\s*['\"]([^'\"]*)['\"]", item)
            if found_id and found_name:
                pairs[found_id.group(1)] = found_name.group(1)
        if not pairs:
            raise ValueError(f"{path}: no item {{ id: 1 name: 'cat' }} entries; fix the file")
        return _names_from_ids(pairs, path)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: empty label map; write one class name per line")
    return _checked_names(names, path)


def _names_from_ids(mapping: dict, where: str) -> list[str]:
    by_id: dict[int, str] = {}
    for key, name in mapping.items():
        try:
            class_id = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: id {key!r} is not an integer; map ids 1, 2, ... to names") from None
        if class_id == 0 and str(name).lower() == "background":
            continue
        if class_id < 1:
            raise ValueError(
                f"{where}: id {class_id} ({name!r}); ids start at 1 (Model Maker reserves 0 for the "
                "background); number the classes from 1"
            )
        by_id[class_id] = str(name)
    return _checked_names([by_id[class_id] for class_id in sorted(by_id)], where)


def _checked_names(names: list[str], where: str) -> list[str]:
    names = [name.strip() for name in names]
    if not names or any(not name for name in names):
        raise ValueError(f"{where}: class names must be non-empty; got {names!r}")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{where}: class names repeat ({repeated}); each class needs its own name")
    return names


# -- shared checks ------------------------------------------------------------------------------------------


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


def _number(text: Any) -> float | None:
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
        values = [_number(value) for value in raw.values]
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


def _existing_folder(path: str | os.PathLike, what: str, fix: str) -> str:
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        found = "is a file" if os.path.exists(folder) else "folder not found"
        raise FileNotFoundError(f"{folder}: {found}; expected the {what}; {fix}")
    return folder


# -- Pascal VOC ---------------------------------------------------------------------------------------------


def read_pascal_voc(
    cls: type[DetectionData],
    images_dir: str | os.PathLike,
    annotations_dir: str | os.PathLike,
    label_map: Any,
    annotation_filenames: Sequence[str] | None = None,
    ignore_difficult_instances: bool = False,
    max_num_images: int | None = None,
) -> DetectionData:
    """See `DetectionData.from_pascal_voc`."""
    names = resolve_label_map(label_map)
    annotations = _existing_folder(annotations_dir, "folder of Pascal VOC .xml files", "check the path")
    images = _existing_folder(images_dir, "folder of images the .xml files name", "check the path")
    if max_num_images is not None:
        check_integer("max_num_images", max_num_images, 1)
    if annotation_filenames is not None:
        files = [
            os.path.join(annotations, name if name.lower().endswith(".xml") else f"{name}.xml")
            for name in annotation_filenames
        ]
    else:
        files = sorted(
            os.path.join(annotations, name)
            for name in os.listdir(annotations)
            if name.lower().endswith(".xml") and not name.startswith(".")
        )
    if not files:
        raise ValueError(
            f"{annotations}: no .xml files; expected one Pascal VOC annotation file per image "
            "(<annotation><filename>...<object><name>...<bndbox>...)"
        )
    files = files[:max_num_images] if max_num_images else files
    reader = AnnotationReader(names)
    by_stem: dict[str, str] | None = None
    for xml_path in files:
        parsed = _parse_voc(xml_path, reader, ignore_difficult_instances)
        if parsed is None:
            continue
        filename, size, objects = parsed
        image_path = os.path.join(images, filename) if filename else ""
        if not filename or not os.path.exists(image_path):
            if by_stem is None:  # listed once, only when some <filename> does not match a file
                by_stem = {}
                for name in sorted(os.listdir(images), reverse=True):
                    if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                        by_stem[os.path.splitext(name)[0]] = os.path.join(images, name)
            stem = os.path.splitext(os.path.basename(xml_path))[0]
            image_path = by_stem.get(stem, image_path or os.path.join(images, f"{stem}.jpg"))
        reader.add(image_path, objects, listed_in=xml_path, stated_size=size)
    source = f"{annotations}"
    check_usable(source, [reader], "fix the files listed in data.skipped")
    report(source, [reader])
    return reader.build(cls)


def _parse_voc(
    xml_path: str, reader: AnnotationReader, ignore_difficult: bool
) -> tuple[str, tuple[int, int] | None, list[RawObject]] | None:
    try:
        root = ElementTree.parse(xml_path).getroot()
    except FileNotFoundError:
        reader.leave_out(xml_path, "annotation file not found; skipped")
        return None
    except ElementTree.ParseError as err:
        reader.leave_out(xml_path, f"not valid XML ({err}); file skipped")
        return None
    except (OSError, UnicodeDecodeError) as err:
        reader.leave_out(xml_path, f"cannot read ({err}); file skipped")
        return None
    if root.tag != "annotation":
        reader.leave_out(xml_path, f"root element is <{root.tag}>, expected <annotation>; file skipped")
        return None
    filename = (root.findtext("filename") or "").strip()
    width, height = _number(root.findtext("size/width")), _number(root.findtext("size/height"))
    size = (int(width), int(height)) if width and height and width > 0 and height > 0 else None
    objects = []
    for number, element in enumerate(root.findall("object"), start=1):
        label = (element.findtext("name") or "").strip()
        if ignore_difficult and (element.findtext("difficult") or "0").strip() == "1":
            continue
        box = element.find("bndbox")
        if box is None:
            reader.leave_out(xml_path, f"object {number} ({label!r}): no <bndbox>; object dropped", False)
            continue
        values = [box.findtext(tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        objects.append(RawObject(label, values, xml_path, f"object {number}"))
    return filename, size, objects


# -- Model Maker CSV ----------------------------------------------------------------------------------------


def read_csv(
    cls: type[DetectionData],
    path: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    delimiter: str = ",",
    quotechar: str = '"',
    max_num_images: int | None = None,
) -> tuple[DetectionData, DetectionData, DetectionData]:
    """See `DetectionData.from_csv`."""
    csv_path = os.fspath(path)
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"{csv_path}: CSV file not found; check the path")
    if max_num_images is not None:
        check_integer("max_num_images", max_num_images, 1)
    base = os.fspath(images_dir) if images_dir is not None else os.path.dirname(os.path.abspath(csv_path))
    # set -> image -> (first line, objects); labels gathered from every well-formed row
    listed: dict[str, dict[str, tuple[int, list[RawObject]]]] = {
        name: {} for name in ("TRAINING", "VALIDATION", "TEST")
    }
    image_set: dict[str, tuple[str, int]] = {}
    labels: set[str] = set()
    problems = AnnotationReader([])  # row-level problems, found before the label names are known
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as file:
            rows = csv.reader(file, delimiter=delimiter, quotechar=quotechar)
            for row in rows:
                line, cells = rows.line_num, [cell.strip() for cell in row]
                if not any(cells) or (line == 1 and cells[0].lower() in ("set", "split", "subset")):
                    continue  # blank line, or a header row
                where = f"line {line}"
                split = CSV_SETS.get(cells[0].upper())
                if split is None:
                    problems.leave_out(
                        csv_path,
                        f"{where}: set {cells[0]!r} is not TRAINING, VALIDATION or TEST; row skipped",
                    )
                    continue
                image = cells[1] if len(cells) > 1 else ""
                if not image:
                    problems.leave_out(csv_path, f"{where}: no image path in column 2; row skipped")
                    continue
                if "://" in image:
                    problems.leave_out(
                        csv_path,
                        f"{where}: {image} is a remote path; download the images and list local paths (or "
                        "pass images_dir); row skipped",
                    )
                    continue
                earlier = image_set.setdefault(image, (split, line))
                if earlier[0] != split:
                    problems.leave_out(
                        csv_path,
                        f"{where}: {image} is already in the {earlier[0]} set (line {earlier[1]}); an image "
                        "belongs to one set; row skipped",
                    )
                    continue
                entry = listed[split].setdefault(image, (line, []))
                if len(cells) <= 2 or not any(cells[2:]):
                    continue  # the image without objects
                if len(cells) < 9:
                    problems.leave_out(
                        csv_path, f"{where}: {len(cells)} columns, expected 11: {_CSV_LAYOUT}; row skipped"
                    )
                    continue
                # both layouts hold (xmin, ymin) in columns 4-5 and (xmax, ymax) in columns 8-9
                values = [cells[3], cells[4], cells[7], cells[8]]
                entry[1].append(RawObject(cells[2], values, csv_path, where, normalized=True))
                labels.add(cells[2])
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{csv_path}: cannot read as CSV ({err}); save it as UTF-8 CSV") from None
    labels.discard("")
    if not labels:
        raise ValueError(f"{csv_path}: no row with an object; expected rows like {_CSV_LAYOUT}")
    names = sorted(labels)
    readers = []
    for images in listed.values():
        reader = AnnotationReader(names)
        chosen = list(images.items())
        for image, (line, objects) in chosen[:max_num_images] if max_num_images else chosen:
            image_path = image if os.path.isabs(image) else os.path.join(base, image)
            reader.add(image_path, objects, listed_in=f"{csv_path}, line {line}")
        readers.append(reader)
    readers[0].skipped[:0] = problems.skipped  # row problems are reported with the training part
    readers[0].images_left_out += problems.images_left_out
    check_usable(csv_path, readers, f"fix the rows listed in the message (paths are relative to {base})")
    report(csv_path, readers)
    train, validation, test = (reader.build(cls) for reader in readers)
    return train, validation, test


# -- COCO ---------------------------------------------------------------------------------------------------


def read_coco(
    cls: type[DetectionData],
    annotations_json: str | os.PathLike,
    images_dir: str | os.PathLike,
    include_crowd: bool = False,
) -> DetectionData:
    """See `DetectionData.from_coco`."""
    json_path = os.fspath(annotations_json)
    if not os.path.isfile(json_path):
        raise FileNotFoundError(f"{json_path}: COCO annotations file not found; check the path")
    images_root = _existing_folder(images_dir, "folder of the images the COCO file names", "check the path")
    try:
        with open(json_path, encoding="utf-8-sig") as file:
            data = json.load(file)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{json_path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); fix or "
            "re-export the file"
        ) from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{json_path}: not UTF-8 text ({err.reason}); re-export the file") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("categories"), list)
    ):
        raise ValueError(
            f"{json_path}: expected a COCO object with 'images', 'annotations' and 'categories' lists; "
            "re-export the file in COCO format"
        )
    names_by_id = _coco_categories(json_path, data["categories"])
    names = [names_by_id[category] for category in sorted(names_by_id)]
    reader = AnnotationReader(names, label_source="the categories")
    entries: dict[Any, tuple[str, tuple[int, int] | None]] = {}
    file_names: dict[str, Any] = {}
    for position, image in enumerate(data["images"]):
        where = f"images[{position}]"
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            reader.leave_out(json_path, f"{where}: needs an 'id' and a 'file_name'; image skipped")
            continue
        image_id, file_name = image["id"], image["file_name"]
        if image_id in entries or file_name in file_names:
            what = f"id {image_id!r}" if image_id in entries else f"file_name {file_name!r}"
            reader.leave_out(json_path, f"{where}: repeats the {what} of an earlier image; skipped")
            continue
        width, height = _number(image.get("width")), _number(image.get("height"))
        size = (int(width), int(height)) if width and height and width > 0 and height > 0 else None
        entries[image_id] = (file_name, size)
        file_names[file_name] = image_id
    objects: dict[Any, list[RawObject]] = {image_id: [] for image_id in entries}
    crowd = 0
    annotations = data.get("annotations", [])
    for position, annotation in enumerate(annotations if isinstance(annotations, list) else []):
        where = f"annotations[{position}]"
        if not isinstance(annotation, dict):
            reader.leave_out(json_path, f"{where}: not an object; dropped", False)
            continue
        if "id" in annotation:
            where += f" (id {annotation['id']})"
        if annotation.get("image_id") not in entries:
            reader.leave_out(
                json_path,
                f"{where}: image_id {annotation.get('image_id')!r} is not in 'images'; dropped",
                False,
            )
            continue
        if annotation.get("iscrowd") and not include_crowd:
            crowd += 1
            continue
        category = annotation.get("category_id")
        label = (
            names_by_id.get(category, f"category_id {category!r}") if not isinstance(category, list) else ""
        )
        bbox = annotation.get("bbox")
        values = bbox if isinstance(bbox, list) else [bbox]
        objects[annotation["image_id"]].append(RawObject(label, values, json_path, where, xywh=True))
    for image_id, (file_name, size) in entries.items():
        path = os.path.join(images_root, file_name)
        reader.add(path, objects[image_id], listed_in=f"{json_path}, image id {image_id!r}", stated_size=size)
    if crowd:
        logger.info(
            "%s: left out %d crowd regions (iscrowd: 1); include_crowd=True keeps them", json_path, crowd
        )
    check_usable(json_path, [reader], "fix the entries listed in the message")
    report(json_path, [reader])
    return reader.build(cls)


def _coco_categories(json_path: str, categories: list) -> dict[int, str]:
    names_by_id: dict[int, str] = {}
    for position, category in enumerate(categories):
        if (
            not isinstance(category, dict)
            or isinstance(category.get("id"), bool)
            or not isinstance(category.get("id"), int)
            or not isinstance(category.get("name"), str)
        ):
            raise ValueError(
                f"{json_path}: categories[{position}] = {category!r}; each category needs an integer 'id' "
                "and a 'name'; fix the file"
            )
        if category["id"] in names_by_id:
            raise ValueError(
                f"{json_path}: category id {category['id']} appears twice in 'categories'; fix the file"
            )
        names_by_id[category["id"]] = category["name"]
    if not names_by_id:
        raise ValueError(f"{json_path}: 'categories' is empty; list the classes the boxes belong to")
    _checked_names([names_by_id[key] for key in sorted(names_by_id)], f"{json_path}: categories")
    return names_by_id
