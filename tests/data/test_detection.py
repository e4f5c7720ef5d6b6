"""DetectionData: the Pascal VOC, Model Maker CSV and COCO readers on files written here from real photos
(scikit-image's astronaut), every malformed case with its message, to_coco_dict and split."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from effnet.data.detection import DetectionData, DetectionSample
from effnet.data.images import load_image


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return Image.fromarray(data.astronaut())


def write_image(photo, path, size=(80, 60)):
    path.parent.mkdir(parents=True, exist_ok=True)
    photo.resize(size).save(path)
    return path


def voc(filename, objects, size=(80, 60), extra=""):
    parts = [f"<annotation><filename>{filename}</filename>"]
    if size:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, box, *difficult in objects:
        coords = "".join(
            f"<{tag}>{value}</{tag}>"
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)
        )
        flag = f"<difficult>{difficult[0]}</difficult>" if difficult else ""
        parts.append(f"<object><name>{name}</name>{flag}<bndbox>{coords}</bndbox></object>")
    return "".join(parts) + extra + "</annotation>"


def write_voc(root, name, text):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"{name}.xml").write_text(text)


def reasons(data):
    return [(entry.path.rsplit("/", 1)[-1], entry.reason) for entry in data.skipped]


# -- Pascal VOC ----------------------------------------------------------------------------------------------


def test_pascal_voc_reads_boxes_labels_and_sizes(photo, tmp_path):
    write_image(photo, tmp_path / "images" / "a.jpg")
    write_image(photo, tmp_path / "images" / "b.png", size=(50, 70))
    write_voc(tmp_path, "a", voc("a.jpg", [("dog", (1, 2, 30, 40)), ("cat", (10.5, 5, 79, 59))]))
    write_voc(tmp_path, "b", voc("b.png", [("cat", (0, 0, 50, 70))], size=None))  # size from the header
    data = DetectionData.from_pascal_voc(tmp_path / "images", tmp_path / "annotations", {1: "cat", 2: "dog"})
    assert data.label_names == ["cat", "dog"] and data.label_map == {1: "cat", 2: "dog"}
    assert len(data) == data.size == 2 and data.skipped == [] and data.clipped == []
    a, b = data
    assert a.path.name == "a.jpg" and (a.width, a.height) == (80, 60)
    np.testing.assert_array_equal(a.boxes, np.array([[1, 2, 30, 40], [10.5, 5, 79, 59]], np.float32))
    assert a.boxes.dtype == np.float32 and a.labels.dtype == np.int64 and a.labels.tolist() == [1, 0]
    assert (b.width, b.height) == (50, 70) and b.labels.tolist() == [0]
    assert data.object_counts() == {"cat": 2, "dog": 1}


@pytest.mark.parametrize(
    "file_name, text",
    [
        ("labels.txt", "cat\ndog\n"),
        ("labels.yaml", "label_map:\n  1: cat\n  2: 'dog'\n"),
        ("labels.json", '{"2": "dog", "1": "cat"}'),
        ("labels.pbtxt", "item {\n  id: 2\n  name: 'dog'\n}\nitem { id: 1 name: \"cat\" }\n"),
    ],
)
def test_label_map_files(photo, tmp_path, file_name, text):
    write_image(photo, tmp_path / "images" / "a.jpg")
    write_voc(tmp_path, "a", voc("a.jpg", [("dog", (1, 2, 30, 40))]))
    (tmp_path / file_name).write_text(text)
    for label_map in (tmp_path / file_name, ["cat", "dog"], {0: "background", 1: "cat", 2: "dog"}):
        data = DetectionData.from_pascal_voc(tmp_path / "images", tmp_path / "annotations", label_map)
        assert data.label_names == ["cat", "dog"] and data[0].labels.tolist() == [1]


def test_pascal_voc_malformed_files_are_named_and_good_ones_kept(photo, tmp_path, caplog):
    images, root = tmp_path / "images", tmp_path
    for name in ("good", "outside", "reversed", "unknown", "empty", "nonnumeric", "nobox", "mismatch"):
        write_image(photo, images / f"{name}.jpg")
    (images / "corrupt.jpg").write_bytes(b"this is not a JPEG")
    write_voc(root, "good", voc("good.jpg", [("cat", (1, 2, 30, 40)), ("cat", (1, 2, 30, 40))]))
    write_voc(root, "missing", voc("missing.jpg", [("cat", (1, 2, 30, 40))]))
    write_voc(root, "corrupt", voc("corrupt.jpg", [("cat", (1, 2, 30, 40))]))
    write_voc(root, "broken", "<annotation><filename>good.jpg</filename><object>")
    write_voc(
        root,
        "outside",
        voc("outside.jpg", [("cat", (60, 40, 95, 70)), ("dog", (85, 0, 99, 10)), ("dog", (0, 0, 9, 9))]),
    )
    write_voc(root, "reversed", voc("reversed.jpg", [("cat", (30, 2, 10, 40)), ("dog", (0, 0, 9, 9))]))
    write_voc(root, "unknown", voc("unknown.jpg", [("horse", (1, 2, 30, 40)), ("dog", (0, 0, 9, 9))]))
    write_voc(root, "empty", voc("empty.jpg", []))
    write_voc(root, "twice", voc("good.jpg", [("cat", (1, 2, 3, 4))]))
    write_voc(root, "nonnumeric", voc("nonnumeric.jpg", [("cat", ("abc", 2, 30, 40)), ("dog", (0, 0, 9, 9))]))
    write_voc(
        root, "nobox", voc("nobox.jpg", [("dog", (0, 0, 9, 9))], extra="<object><name>cat</name></object>")
    )
    write_voc(root, "mismatch", voc("mismatch.jpg", [("dog", (0, 0, 9, 9))], size=(160, 120)))
    with caplog.at_level(logging.INFO, logger="effnet.data.detection"):
        data = DetectionData.from_pascal_voc(images, root / "annotations", ["cat", "dog"])
    kept = {sample.path.stem: sample for sample in data}
    assert sorted(kept) == ["empty", "good", "nobox", "nonnumeric", "outside", "reversed", "unknown"]
    assert kept["empty"].boxes.shape == (0, 4)  # a negative image, kept
    assert kept["good"].labels.tolist() == [0]  # the exact repeat dropped
    np.testing.assert_array_equal(kept["outside"].boxes, [[60, 40, 80, 60], [0, 0, 9, 9]])
    for name in ("reversed", "unknown", "nonnumeric", "nobox"):
        assert kept[name].labels.tolist() == [1], name
    found = reasons(data)
    expected = [
        ("broken.xml", "not valid XML"),
        ("corrupt.jpg", "cannot read (not an image format Pillow recognizes); image skipped (listed in"),
        ("good.xml", "object 2 ('cat'): repeats an earlier object; dropped"),
        ("mismatch.jpg", "gives its size as 160x120 but it displays as 80x60"),
        ("missing.jpg", "cannot read (image file not found)"),
        ("nobox.xml", "object 2 ('cat'): no <bndbox>; object dropped"),
        ("nonnumeric.xml", "object 1 ('cat'): coordinates ('abc', '2', '30', '40') are not 4 finite numbers"),
        ("outside.xml", "object 2 ('dog'): box (85, 0, 99, 10) lies outside the 80x60 image; object dropped"),
        ("reversed.xml", "object 1 ('cat'): xmin 30 >= xmax 10 (an empty or reversed box); object dropped"),
        ("twice.xml", "good.jpg is already annotated in"),
        ("unknown.xml", "object 1: label 'horse' is not in the label map ['cat', 'dog']; object dropped"),
    ]
    assert len(found) == len(expected)
    for (name, reason), (want_name, want_reason) in zip(sorted(found), expected, strict=True):
        assert name == want_name and want_reason in reason, (name, reason)
    assert [str(entry) for entry in data.clipped] == [
        f"{root / 'annotations' / 'outside.xml'}: object 1 ('cat'): box (60, 40, 95, 70) reaches past the "
        "80x60 image; clipped to (60, 40, 80, 60)"
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "left out 5 images and 6 objects, clipped 1 boxes" in warnings[0].message
    assert any("1 images have no objects; kept as negative" in r.message for r in caplog.records)


def test_pascal_voc_model_maker_arguments(photo, tmp_path):
    for name in ("a", "b", "c"):
        write_image(photo, tmp_path / "images" / f"{name}.jpg")
        write_voc(tmp_path, name, voc(f"{name}.jpg", [("cat", (1, 2, 30, 40)), ("dog", (0, 0, 9, 9), 1)]))
    load = DetectionData.from_pascal_voc
    args = (tmp_path / "images", tmp_path / "annotations", {1: "cat", 2: "dog"})
    picked = load(*args, annotation_filenames=["c", "a.xml"], num_shards=3, cache_dir=tmp_path / "cache")
    assert [sample.path.stem for sample in picked] == ["c", "a"]
    assert not (tmp_path / "cache").exists()  # the cache arguments are accepted and ignored
    assert [sample.path.stem for sample in load(*args, max_num_images=2)] == ["a", "b"]
    easy = load(*args, ignore_difficult_instances=True, cache_prefix_filename="x")
    assert all(sample.labels.tolist() == [0] for sample in easy)
    assert all(sample.labels.tolist() == [0, 1] for sample in load(*args))


def test_pascal_voc_image_found_by_annotation_name(photo, tmp_path):
    write_image(photo, tmp_path / "images" / "frame7.png")
    write_voc(tmp_path, "frame7", voc("renamed.jpg", [("cat", (1, 2, 30, 40))]))
    data = DetectionData.from_pascal_voc(tmp_path / "images", tmp_path / "annotations", ["cat"])
    assert data[0].path.name == "frame7.png" and data.skipped == []


def test_unusable_inputs_raise_one_line_errors(photo, tmp_path):
    images = tmp_path / "images"
    write_image(photo, images / "a.jpg")
    with pytest.raises(
        FileNotFoundError, match=r"nowhere: folder not found; expected the folder of Pascal VOC"
    ):
        DetectionData.from_pascal_voc(images, tmp_path / "nowhere", ["cat"])
    (tmp_path / "annotations").mkdir()
    with pytest.raises(ValueError, match=r"annotations: no .xml files"):
        DetectionData.from_pascal_voc(images, tmp_path / "annotations", ["cat"])
    write_voc(tmp_path, "a", voc("a.jpg", [("horse", (1, 2, 30, 40))]))
    write_voc(tmp_path, "b", voc("a.jpg", [("zebra", (1, 2, 30, 40))]))
    with pytest.raises(
        ValueError, match=r"no object has a label in the label map \['cat'\]; the labels found are"
    ):
        DetectionData.from_pascal_voc(images, tmp_path / "annotations", ["cat"])
    for name in ("a", "b"):
        (tmp_path / "annotations" / f"{name}.xml").unlink()
    write_voc(tmp_path, "x", voc("gone.jpg", [("cat", (1, 2, 30, 40))]))
    write_voc(tmp_path, "y", voc("gone.jpg", [("cat", (1, 2, 30, 40))]))
    with pytest.raises(ValueError, match=r"no usable image: 2 left out \(e.g. .*gone.jpg: cannot read"):
        DetectionData.from_pascal_voc(images, tmp_path / "annotations", ["cat"])
    with pytest.raises(ValueError, match=r"id 0 \('cat'\); ids start at 1"):
        DetectionData.from_pascal_voc(images, tmp_path / "annotations", {0: "cat"})
    with pytest.raises(FileNotFoundError, match=r"label_map 'labels.txt': no such file; pass a dict"):
        DetectionData.from_pascal_voc(images, tmp_path / "annotations", "labels.txt")
    with pytest.raises(ValueError, match=r"class names repeat \(\['cat'\]\)"):
        DetectionData.from_pascal_voc(images, tmp_path / "annotations", ["cat", "cat"])


def test_boxes_refer_to_the_displayed_image(photo, tmp_path):
    """A phone photo stored 80x60 with EXIF orientation 6 displays (and decodes, in effnet) as 60x80."""
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "images").mkdir()
    photo.resize((80, 60)).save(tmp_path / "images" / "phone.jpg", exif=exif)
    photo.resize((80, 60)).save(tmp_path / "images" / "phone2.jpg", exif=exif)
    assert load_image(tmp_path / "images" / "phone.jpg").size == (60, 80)
    write_voc(tmp_path, "phone", voc("phone.jpg", [("cat", (1, 2, 50, 70))], size=(60, 80)))
    write_voc(tmp_path, "phone2", voc("phone2.jpg", [("cat", (1, 2, 50, 50))], size=(80, 60)))
    data = DetectionData.from_pascal_voc(tmp_path / "images", tmp_path / "annotations", ["cat"])
    assert [(s.path.name, s.width, s.height) for s in data] == [("phone.jpg", 60, 80)]
    assert (
        "its EXIF orientation rotates it); boxes must refer to the image as displayed"
        in data.skipped[0].reason
    )


# -- Model Maker CSV -----------------------------------------------------------------------------------------


def test_csv_both_layouts_sets_and_malformed_rows(photo, tmp_path, caplog):
    for name in ("a", "b", "c", "d", "e"):
        write_image(photo, tmp_path / "images" / f"{name}.jpg", size=(100, 50))
    rows = [
        "TRAINING,images/a.jpg,cup,0.1,0.2,,,0.5,0.6,,",  # line 1
        "TRAINING,images/a.jpg,Salad,0.0,0.0,0.3,0.0,0.3,0.4,0.0,0.4",  # the 4-corner layout
        "TEST,images/b.jpg,cup,0.2,0.2,,,0.9,1.2,,",  # reaches past the bottom: clipped
        "VALIDATION,images/c.jpg,,,,,,,,,",  # an image with no objects
        "TRAIN,images/d.jpg,cup,0.1,0.1,,,0.2,0.2,,",  # line 5: TRAIN is TRAINING
        "HOLDOUT,images/e.jpg,cup,0.1,0.1,,,0.2,0.2,,",
        "TRAINING,images/e.jpg,cup,0.1,0.1",
        "TRAINING,images/e.jpg,cup,x,0.1,,,0.2,0.2,,",
        "TRAINING,images/e.jpg,cup,0.5,0.1,,,0.2,0.2,,",
        "TEST,images/a.jpg,cup,0.1,0.1,,,0.2,0.2,,",  # line 10: a is in TRAINING already
        "TRAINING,images/missing.jpg,cup,0.1,0.1,,,0.2,0.2,,",
        "TRAINING,gs://bucket/f.jpg,cup,0.1,0.1,,,0.2,0.2,,",
        "TRAINING,images/e.jpg,cup,0.3,0.3,,,0.6,0.6,,",
    ]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="effnet.data.detection"):
        train, validation, test = DetectionData.from_csv(csv_path)
    assert train.label_names == validation.label_names == test.label_names == ["Salad", "cup"]
    assert [s.path.name for s in train] == ["a.jpg", "d.jpg", "e.jpg"]
    a = train[0]
    np.testing.assert_allclose(a.boxes, [[10, 10, 50, 30], [0, 0, 30, 20]], rtol=1e-6)
    assert a.labels.tolist() == [1, 0]
    np.testing.assert_allclose(train[2].boxes, [[30, 15, 60, 30]], rtol=1e-6)
    assert len(validation) == 1 and validation[0].boxes.shape == (0, 4)
    np.testing.assert_allclose(test[0].boxes, [[20, 10, 90, 50]], rtol=1e-6)
    assert "line 3 ('cup'): box (20, 10, 90, 60) reaches past the 100x50 image" in test.clipped[0].reason
    found = sorted((entry.path.rsplit("/", 1)[-1], entry.reason) for entry in train.skipped)
    expected = [
        ("labels.csv", "line 10: images/a.jpg is already in the TRAINING set (line 1)"),
        ("labels.csv", "line 12: gs://bucket/f.jpg is a remote path"),
        ("labels.csv", "line 6: set 'HOLDOUT' is not TRAINING, VALIDATION or TEST; row skipped"),
        ("labels.csv", "line 7: 5 columns, expected 11"),
        ("labels.csv", "line 8 ('cup'): coordinates ('x', '0.1', '0.2', '0.2') are not 4 finite numbers"),
        ("labels.csv", "line 9 ('cup'): xmin 0.5 >= xmax 0.2"),
        ("missing.jpg", "cannot read (image file not found); image skipped (listed in"),
    ]
    assert len(found) == len(expected)
    for (name, reason), (want_name, want_reason) in zip(found, expected, strict=True):
        assert name == want_name and want_reason in reason, (name, reason)
    assert "labels.csv, line 11" in found[-1][1]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_csv_empty_split_images_dir_and_errors(photo, tmp_path):
    write_image(photo, tmp_path / "pictures" / "a.jpg")
    csv_path = tmp_path / "csv" / "labels.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("TRAINING,a.jpg,cup,0.1,0.2,,,0.5,0.6,,\n")
    train, validation, test = DetectionData.from_csv(csv_path, images_dir=tmp_path / "pictures")
    assert len(train) == 1 and len(validation) == len(test) == 0 and test.label_names == ["cup"]
    with pytest.raises(FileNotFoundError, match=r"nothere.csv: CSV file not found"):
        DetectionData.from_csv(tmp_path / "nothere.csv")
    with pytest.raises(
        ValueError, match=r"labels.csv: no usable image: 1 left out \(e.g. .*a.jpg: cannot read"
    ):
        DetectionData.from_csv(csv_path)  # relative to the CSV's folder, where a.jpg is not
    csv_path.write_text("TRAINING,a.jpg,,,,,,,,,\n")
    with pytest.raises(ValueError, match=r"labels.csv: no row with an object; expected rows like set,image"):
        DetectionData.from_csv(csv_path, images_dir=tmp_path / "pictures")


# -- COCO ----------------------------------------------------------------------------------------------------


def coco_file(tmp_path, data):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_reads_xywh_boxes_and_category_order(photo, tmp_path):
    for name in ("a", "b", "c"):
        write_image(photo, tmp_path / "images" / f"{name}.jpg")
    (tmp_path / "images" / "bad.jpg").write_bytes(b"")
    images = [
        {"id": 10, "file_name": "a.jpg", "width": 80, "height": 60},
        {"id": 11, "file_name": "b.jpg"},  # no size: read from the header
        {"id": 12, "file_name": "c.jpg", "width": 80, "height": 60},  # no annotations: negative
        {"id": 10, "file_name": "c.jpg"},  # repeated id
        {"id": 13, "file_name": "missing.jpg", "width": 80, "height": 60},
        {"id": 14, "file_name": "bad.jpg"},
        {"file_name": "a.jpg"},
    ]
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [1, 2, 10, 20], "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [5, 5, 100, 10]},  # clipped
        {"id": 3, "image_id": 11, "category_id": 3, "bbox": [0, 0, 0, 5]},  # empty
        {"id": 4, "image_id": 11, "category_id": 9, "bbox": [0, 0, 5, 5]},  # unknown category
        {"id": 5, "image_id": 99, "category_id": 3, "bbox": [0, 0, 5, 5]},  # unknown image
        {"id": 6, "image_id": 11, "category_id": 3, "bbox": [0, "y", 5, 5]},
        {"id": 7, "image_id": 11, "category_id": 3, "bbox": [0, 0, 80, 60], "iscrowd": 1},
        {"id": 8, "image_id": 11, "category_id": 7, "bbox": [2, 3, 4, 5]},
    ]
    categories = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]
    path = coco_file(tmp_path, {"images": images, "annotations": annotations, "categories": categories})
    data = DetectionData.from_coco(path, tmp_path / "images")
    assert data.label_names == ["cat", "dog"]
    assert [s.path.name for s in data] == ["a.jpg", "b.jpg", "c.jpg"]
    np.testing.assert_array_equal(data[0].boxes, [[1, 2, 11, 22], [5, 5, 80, 15]])
    assert data[0].labels.tolist() == [1, 0]
    np.testing.assert_array_equal(data[1].boxes, [[2, 3, 6, 8]])
    assert data[2].boxes.shape == (0, 4)
    found = sorted(entry.reason for entry in data.skipped)
    expected = [
        "annotations[2] (id 3) ('cat'): width 0 is not > 0 (an empty or reversed box); object dropped",
        "annotations[3] (id 4): label 'category_id 9' is not in the categories ['cat', 'dog']",
        "annotations[4] (id 5): image_id 99 is not in 'images'; dropped",
        "annotations[5] (id 6) ('cat'): coordinates (0, 'y', 5, 5) are not 4 finite numbers; object dropped",
        "cannot read (empty file, 0 bytes); image skipped (listed in",
        "cannot read (image file not found); image skipped (listed in",
        "images[3]: repeats the id 10 of an earlier image; skipped",
        "images[6]: needs an 'id' and a 'file_name'; image skipped",
    ]
    assert len(found) == len(expected)
    for reason, want in zip(found, expected, strict=True):
        assert reason.startswith(want), (reason, want)
    assert len(data.clipped) == 1
    with_crowd = DetectionData.from_coco(path, tmp_path / "images", include_crowd=True)
    assert with_crowd[1].labels.tolist() == [0, 1]


def test_coco_malformed_file_raises(tmp_path):
    (tmp_path / "images").mkdir()
    path = tmp_path / "instances.json"
    path.write_text('{"images": [,]}')
    with pytest.raises(
        ValueError, match=r"instances.json: not valid JSON \(Expecting value at line 1, column 13\)"
    ):
        DetectionData.from_coco(path, tmp_path / "images")
    coco_file(tmp_path, {"annotations": []})
    with pytest.raises(
        ValueError, match="expected a COCO object with 'images', 'annotations' and 'categories'"
    ):
        DetectionData.from_coco(path, tmp_path / "images")
    coco_file(tmp_path, {"images": [], "categories": [{"id": "1", "name": "cat"}]})
    with pytest.raises(ValueError, match=r"categories\[0\] = .*needs an integer 'id'"):
        DetectionData.from_coco(path, tmp_path / "images")
    with pytest.raises(FileNotFoundError, match=r"none.json: COCO annotations file not found"):
        DetectionData.from_coco(tmp_path / "none.json", tmp_path / "images")


# -- to_coco_dict, split, samples ----------------------------------------------------------------------------


def sample_set(photo, tmp_path, count=10):
    samples = []
    for index in range(count):
        path = write_image(photo, tmp_path / "images" / f"{index}.jpg")
        boxes = np.array([[index, 1, index + 10.5, 20]] * (index % 3), np.float32)
        samples.append(DetectionSample(path, boxes, np.arange(index % 3) % 2, 80, 60))
    return DetectionData(samples, ["cat", "dog"])


def test_to_coco_dict_is_valid_and_round_trips(photo, tmp_path):
    data = sample_set(photo, tmp_path)
    coco = data.to_coco_dict()
    assert set(coco) == {"images", "annotations", "categories"}
    assert [image["id"] for image in coco["images"]] == list(range(10))
    assert coco["categories"] == [
        {"id": 1, "name": "cat", "supercategory": "none"},
        {"id": 2, "name": "dog", "supercategory": "none"},
    ]
    annotations = coco["annotations"]
    assert [a["id"] for a in annotations] == list(range(1, len(annotations) + 1))  # id 0 means "no match"
    assert len(annotations) == sum(len(s.labels) for s in data)
    for annotation in annotations:
        sample = data[annotation["image_id"]]
        x, y, w, h = annotation["bbox"]
        assert [x, y, x + w, y + h] in sample.boxes.tolist()
        assert annotation["category_id"] - 1 in sample.labels.tolist()
        assert annotation["area"] == pytest.approx(w * h) and annotation["iscrowd"] == 0
    json.dumps(coco)  # plain JSON types only
    coco["images"] = [
        dict(image, file_name=image["file_name"].rsplit("/", 1)[-1]) for image in coco["images"]
    ]
    back = DetectionData.from_coco(coco_file(tmp_path, coco), tmp_path / "images")
    assert back.label_names == data.label_names and back.skipped == []
    for before, after in zip(data, back, strict=True):
        np.testing.assert_array_equal(before.boxes, after.boxes)
        np.testing.assert_array_equal(before.labels, after.labels)


def test_split_is_deterministic_and_disjoint(photo, tmp_path):
    data = sample_set(photo, tmp_path)
    first, rest = data.split(0.7, seed=3)
    again, _ = data.split(0.7, seed=3)
    other, _ = data.split(0.7, seed=4)
    assert len(first) == 7 and len(rest) == 3 and first.label_names == rest.label_names == ["cat", "dog"]
    assert [s.path for s in first] == [s.path for s in again] != [s.path for s in other]
    assert {s.path for s in first} | {s.path for s in rest} == {s.path for s in data}
    assert not {s.path for s in first} & {s.path for s in rest}
    paths = [s.path for s in data]
    assert [paths.index(s.path) for s in first] == sorted(paths.index(s.path) for s in first)  # order kept
    with pytest.raises(ValueError, match=r"fraction must be between 0 and 1, exclusive, got 1.5"):
        data.split(1.5)


def test_sample_and_dataset_checks(tmp_path):
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        DetectionSample(tmp_path / "a.jpg", np.zeros((2, 4)), np.zeros(1), 10, 10)
    sample = DetectionSample(str(tmp_path / "a.jpg"), [[0, 0, 1, 1]], [2], 10, 10)
    assert sample.boxes.dtype == np.float32 and sample.labels.dtype == np.int64
    with pytest.raises(ValueError, match=r"labels \[2\] are not all in 0..1"):
        DetectionData([sample], ["cat", "dog"])
