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
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from typing import Any

from effnet.data.annotation_checks import (
    AnnotationReader,
    RawObject,
    check_usable,
    existing_folder,
    logger,
    parse_number,
    report,
)
from effnet.data.detection import DetectionData
from effnet.data.images import IMAGE_EXTENSIONS
from effnet.data.label_maps import checked_names, resolve_label_map
from effnet.validation import check_integer

CSV_SETS = {
    "TRAINING": "TRAINING",
    "TRAIN": "TRAINING",
    "UNASSIGNED": "TRAINING",
    "VALIDATION": "VALIDATION",
    "VALIDATE": "VALIDATION",
    "TEST": "TEST",
}
_CSV_LAYOUT = "set,image,label,xmin,ymin,,,xmax,ymax,, (coordinates as fractions 0..1)"


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
    annotations = existing_folder(annotations_dir, "folder of Pascal VOC .xml files", "check the path")
    images = existing_folder(images_dir, "folder of images the .xml files name", "check the path")
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
    width, height = parse_number(root.findtext("size/width")), parse_number(root.findtext("size/height"))
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
    images_root = existing_folder(images_dir, "folder of the images the COCO file names", "check the path")
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
        width, height = parse_number(image.get("width")), parse_number(image.get("height"))
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
    checked_names([names_by_id[key] for key in sorted(names_by_id)], f"{json_path}: categories")
    return names_by_id
