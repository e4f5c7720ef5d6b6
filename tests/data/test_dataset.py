import csv
import io
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from deadline import deadline
from PIL import Image
from skimage import data
from sklearn.datasets import load_digits

from effnet.data import EvalTransform, ImageDataset, TrainTransform
from effnet.preprocessing import Preprocessing

PRE = Preprocessing(input_size=(32, 32))
LOGGER = "effnet.data.dataset"
BAD = {"bad.jpg", "truncated.png"}


@pytest.fixture(scope="module")
def digits():
    return load_digits()  # .images (1797, 8, 8) with values 0..16, .target the digit shown


def digit(digits, index: int) -> Image.Image:
    pixels = (digits.images[index] * 15).astype(np.uint8)
    return Image.fromarray(pixels).resize((24, 24), Image.Resampling.NEAREST)


def of_digit(digits, value: int, count: int) -> list[int]:
    return np.flatnonzero(digits.target == value)[:count].tolist()


def photo(index: int) -> Image.Image:
    return Image.fromarray(data.chelsea()).crop((index * 10, 0, index * 10 + 120, 90))


def truncated_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()[: buffer.tell() // 2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits) -> Path:
    """cat/ (4 JPEG photos), one/ (5 in mixed formats + 2 unreadable), zero/ (8 gray PNGs, 2 nested), plus
    hidden files and folders and text files that must not count."""
    root = tmp_path_factory.mktemp("folder")
    cat, one, zero = root / "cat", root / "one", root / "zero"
    for path in (cat, one, zero / "more" / "deeper", zero / ".cache", root / ".git"):
        path.mkdir(parents=True)
    for i in range(4):
        photo(i).save(cat / f"chelsea{i}.jpg", quality=90)
    ones = of_digit(digits, 1, 5)
    digit(digits, ones[0]).convert("RGBA").save(one / "rgba.png")
    Image.fromarray(np.asarray(digit(digits, ones[1]), dtype=np.uint16) * 257).save(one / "sixteen.png")
    digit(digits, ones[2]).convert("CMYK").save(one / "cmyk.jpg")
    digit(digits, ones[3]).convert("RGB").save(one / "upper.JPG")
    digit(digits, ones[4]).save(one / "gray.jpeg")
    (one / "bad.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    (one / "truncated.png").write_bytes(truncated_png(photo(0)))
    zeros = of_digit(digits, 0, 8)
    for i in range(6):
        digit(digits, zeros[i]).save(zero / f"{i}.png")
    digit(digits, zeros[6]).save(zero / "more" / "nested.png")
    digit(digits, zeros[7]).save(zero / "more" / "deeper" / "nested.png")
    for hidden in (zero / ".hidden.png", zero / ".cache" / "x.png", root / ".git" / "x.png"):
        digit(digits, 0).save(hidden, format="PNG")
    (zero / "notes.txt").write_text("not an image")
    (root / "readme.txt").write_text("not a class")
    return root


def top_folder(root: Path, path: str) -> str:
    return Path(path).relative_to(root).parts[0]


def decoded(batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([images for images, _ in batches]), np.concatenate(
        [labels for _, labels in batches]
    )


def dataset_records(caplog) -> list[logging.LogRecord]:
    return [
        record for record in caplog.records if record.name == LOGGER and record.levelno >= logging.WARNING
    ]


# -- listing -------------------------------------------------------------------------------------------------


def test_from_folder_lists_classes_nested_folders_and_image_files_only(folder):
    ds = ImageDataset.from_folder(folder, shuffle=False)
    assert ds.index_to_label == ds.label_names == ["cat", "one", "zero"]
    assert ds.class_counts() == {"cat": 4, "one": 7, "zero": 8}
    assert len(ds) == ds.size == 19 and ds.num_classes == 3
    names = [Path(path).name for path in ds.paths]
    assert "upper.JPG" in names and "gray.jpeg" in names  # extensions in any case
    assert not any(name.startswith(".") or name.endswith(".txt") for name in names)
    assert not any("/.cache/" in path or "/.git/" in path for path in ds.paths)
    assert str(folder / "zero" / "more" / "deeper" / "nested.png") in ds.paths
    for path, label in zip(ds.paths, ds.labels, strict=True):
        assert top_folder(folder, path) == ds.index_to_label[label]
    assert ds.paths == sorted(ds.paths)  # unshuffled: grouped by class, sorted by path
    assert ds.labels.dtype == np.int64


def test_shuffle_is_reproducible_with_a_seed(folder):
    ordered = ImageDataset.from_folder(folder, shuffle=False)
    first, again = ImageDataset.from_folder(folder, seed=1), ImageDataset.from_folder(folder, seed=1)
    other = ImageDataset.from_folder(folder, seed=2)
    assert first.paths == again.paths and (first.labels == again.labels).all()
    assert first.paths != other.paths and first.paths != ordered.paths
    assert sorted(first.paths) == ordered.paths
    for path, label in zip(first.paths, first.labels, strict=True):
        assert top_folder(folder, path) == first.index_to_label[label]


def test_views(folder):
    ds = ImageDataset.from_folder(folder, shuffle=False)
    path, label = ds[0]
    assert path == ds.paths[0] and label == 0 and isinstance(label, int)
    assert ds[-1] == (ds.paths[-1], 2)
    ds.paths.clear()
    ds.labels[:] = 1
    ds.index_to_label.clear()
    assert len(ds.paths) == 19 and ds.labels[0] == 0 and ds.num_classes == 3  # views are copies
    assert repr(ds) == "ImageDataset(size=19, num_classes=3, labels=['cat', 'one', 'zero'])"


def test_missing_folder_is_named(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder: folder not found"):
        ImageDataset.from_folder(missing)


def test_file_instead_of_folder(tmp_path, digits):
    digit(digits, 0).save(tmp_path / "x.png")
    with pytest.raises(NotADirectoryError, match=r"x\.png: is a file, expected a folder"):
        ImageDataset.from_folder(tmp_path / "x.png")


def test_single_class_says_what_was_found(tmp_path, digits):
    (tmp_path / "only").mkdir()
    (tmp_path / ".hidden").mkdir()
    digit(digits, 0).save(tmp_path / "only" / "a.png")
    digit(digits, 1).save(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="1 class folder") as info:
        ImageDataset.from_folder(tmp_path)
    message = str(info.value)
    assert "'only'" in message and "at least 2 classes" in message and "its own sub-folder" in message
    assert "1 image files directly inside it" in message


def test_no_class_folders(tmp_path):
    with pytest.raises(ValueError, match="found 0 class folders"):
        ImageDataset.from_folder(tmp_path)


def test_class_folders_without_images_are_named(tmp_path, digits):
    for name in ("good", "other", "empty", "text_only"):
        (tmp_path / name).mkdir()
    digit(digits, 0).save(tmp_path / "good" / "a.png")
    digit(digits, 1).save(tmp_path / "other" / "b.png")
    (tmp_path / "text_only" / "labels.txt").write_text("x")
    (tmp_path / "text_only" / ".hidden.png").write_bytes(b"")
    with pytest.raises(ValueError, match="class folders without images") as info:
        ImageDataset.from_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "empty") + " (nothing with an image extension)" in message
    assert str(tmp_path / "text_only") + " (1 files, none with an image extension)" in message
    assert "good" not in message


def test_listing_5000_files_opens_none(tmp_path, digits, monkeypatch):
    """Listing stays fast on big folders because it only reads directory entries: no image is opened (a
    timing assertion would fail on a loaded machine; speed lives in benchmarks/)."""
    source = tmp_path / "source.png"
    digit(digits, 0).save(source)
    root = tmp_path / "big"
    for i in range(5000):
        folder = root / f"class{i % 2}" / f"part{i % 10}"
        if i < 10:
            folder.mkdir(parents=True)
        try:
            os.link(source, folder / f"{i}.png")
        except OSError:  # a filesystem without hard links
            shutil.copyfile(source, folder / f"{i}.png")

    def no_reading(*args, **kwargs):
        raise AssertionError(f"listing opened a file: {args[:1]}")

    with monkeypatch.context() as patched:
        patched.setattr(Image, "open", no_reading)
        patched.setattr("builtins.open", no_reading)
        ds = ImageDataset.from_folder(root)
    assert len(ds) == 5000 and ds.class_counts() == {"class0": 2500, "class1": 2500}


def test_bad_entries_are_left_out_and_named_and_the_rest_is_listed(tmp_path, digits, monkeypatch, caplog):
    """One bad entry must not cost the rest of its folder: each is named with its reason, never opened."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    root = tmp_path / "data"
    for name in ("a", "b"):
        (root / name / "sub").mkdir(parents=True)
        for i in range(6):
            digit(digits, i).save(root / name / f"{i}.png")
    (root / "a" / "loop.jpg").symlink_to("loop.jpg")
    (root / "a" / "broken.jpg").symlink_to("missing.jpg")
    os.mkfifo(root / "a" / "pipe.jpg")
    (root / "a" / "loop").symlink_to("loop")  # no image extension, still a loop
    (root / "top_loop").symlink_to("top_loop")
    locked = root / "b" / "locked"
    locked.mkdir()
    digit(digits, 0).save(locked / "hidden_from_us.png")
    real_scandir = os.scandir

    def scandir(path="."):  # root ignores permission bits, so deny the listing here
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with deadline(10):
        ds = ImageDataset.from_folder(root, shuffle=False)
    assert ds.class_counts() == {"a": 6, "b": 6}
    (record,) = dataset_records(caplog)
    message = record.getMessage()
    for name, reason in [
        ("a/loop.jpg", "cannot read (Too many levels of symbolic links)"),
        ("a/broken.jpg", "broken symlink (its target does not exist)"),
        ("a/pipe.jpg", "a FIFO (named pipe), not a regular file"),
        ("a/loop", "cannot read (Too many levels of symbolic links)"),
        ("top_loop", "cannot read (Too many levels of symbolic links)"),
        ("b/locked", "cannot list folder (Permission denied)"),
    ]:
        assert f"{root / name}: {reason}; skipped" in message, message
    assert "left out 6 entries" in message


# -- decoding ------------------------------------------------------------------------------------------------


def test_unreadable_files_are_skipped_and_reported_once(folder, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ds = ImageDataset.from_folder(folder, shuffle=False)
    transform = EvalTransform(PRE)
    batches = list(ds.iter_batches(transform, batch_size=4, num_workers=0))
    good = [
        (path, label) for path, label in zip(ds.paths, ds.labels, strict=True) if Path(path).name not in BAD
    ]
    images, labels = decoded(batches)
    assert images.dtype == np.float32 and images.shape == (17, 3, 32, 32)
    np.testing.assert_array_equal(images, np.stack([transform(path) for path, _ in good]))
    np.testing.assert_array_equal(labels, [label for _, label in good])
    assert labels.dtype == np.int64
    assert sorted(len(batch_labels) for _, batch_labels in batches) == [
        3,
        3,
        3,
        4,
        4,
    ]  # the bad ones' batches

    (record,) = dataset_records(caplog)
    assert "skipped 2 of 19 images" in record.getMessage()
    assert (
        "bad.jpg: cannot decode" in record.getMessage()
        and "truncated.png: cannot decode" in record.getMessage()
    )
    assert {Path(s.path).name for s in ds.skipped} == BAD
    assert all(s.reason for s in ds.skipped)

    caplog.clear()
    again = list(ds.iter_batches(transform, batch_size=4, num_workers=2))
    assert dataset_records(caplog) == []  # reported once
    assert [len(labels) for _, labels in again] == [len(labels) for _, labels in batches]
    np.testing.assert_array_equal(decoded(again)[0], images)


def test_workers_give_the_same_arrays_in_the_same_order(folder):
    ds = ImageDataset.from_folder(folder)
    transform = EvalTransform(PRE)
    in_process = list(ds.iter_batches(transform, batch_size=5, shuffle=True, seed=3, num_workers=0))
    in_workers = list(ds.iter_batches(transform, batch_size=5, shuffle=True, seed=3, num_workers=2))
    assert len(in_process) == len(in_workers)
    for (images_a, labels_a), (images_b, labels_b) in zip(in_process, in_workers, strict=True):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    other_order = decoded(list(ds.iter_batches(transform, batch_size=5, shuffle=True, seed=4, num_workers=0)))
    assert not np.array_equal(other_order[1], decoded(in_process)[1])


def test_augmentation_is_reproducible_across_worker_counts(folder):
    ds = ImageDataset.from_folder(folder)

    def run(num_workers: int) -> list[np.ndarray]:
        transform = TrainTransform(PRE, seed=7, brightness=0.3)
        return [decoded(list(ds.iter_batches(transform, 8, num_workers=num_workers)))[0] for _ in range(2)]

    (epoch1_a, epoch2_a), (epoch1_b, epoch2_b) = run(0), run(2)
    np.testing.assert_array_equal(epoch1_a, epoch1_b)
    np.testing.assert_array_equal(epoch2_a, epoch2_b)
    assert not np.array_equal(epoch1_a, epoch2_a)  # the transform's generator moves on between epochs


def test_same_file_gets_different_augmentation_in_different_chunks(tmp_path, digits):
    digit(digits, 0).save(tmp_path / "source.png")
    paths = [tmp_path / "source.png"] * 40  # more than one chunk
    ds = ImageDataset.from_samples(paths, [0, 1] * 20, ["a", "b"])
    images, _ = decoded(list(ds.iter_batches(TrainTransform(PRE, seed=0), 40, num_workers=0)))
    assert len({image.tobytes() for image in images}) > 30


def test_drop_last_and_argument_errors(folder, monkeypatch):
    # worker processes even after an earlier test loaded JAX (LiteRT export switches decoding in-process)
    monkeypatch.setattr("effnet.data.dataset._FORK_UNSAFE", ())
    ds = ImageDataset.from_folder(folder)
    transform = EvalTransform(PRE)
    sizes = [len(labels) for _, labels in ds.iter_batches(transform, 8, num_workers=0, drop_last=True)]
    assert len(sizes) == 2 and all(size <= 8 for size in sizes)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        ds.iter_batches(transform, 0)
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0, got -1"):
        ds.iter_batches(transform, num_workers=-1)
    with pytest.raises(TypeError, match="num_workers=0"):
        ds.iter_batches(lambda path: transform(path), num_workers=2)
    images, _ = decoded(list(ds.iter_batches(lambda path: transform(path), 32, num_workers=0)))
    assert len(images) == 17


def test_load_arrays(folder):
    ds = ImageDataset.from_folder(folder, shuffle=False)
    images, labels = ds.load_arrays(EvalTransform(PRE), num_workers=2, progress=False)
    assert images.shape == (17, 3, 32, 32) and images.dtype == np.float32
    assert np.bincount(labels).tolist() == [4, 5, 8]


def test_verify_drops_unreadable_files(folder, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ds = ImageDataset.from_folder(folder)
    report = ds.verify(num_workers=2, progress=False)
    assert report.checked == 19 and report.readable == 17
    assert {Path(s.path).name for s in report.skipped} == BAD
    assert "verified 19 images: 17 readable, 2 dropped" in str(report)
    assert len(ds) == 17 and ds.class_counts() == {"cat": 4, "one": 5, "zero": 8}
    assert {Path(s.path).name for s in ds.skipped} == BAD
    assert len(dataset_records(caplog)) == 1
    caplog.clear()
    assert sum(len(labels) for _, labels in ds.iter_batches(EvalTransform(PRE), 32, num_workers=0)) == 17
    assert dataset_records(caplog) == []


def test_verify_names_a_class_left_without_images(tmp_path, digits):
    for name in ("good", "broken"):
        (tmp_path / name).mkdir()
    digit(digits, 0).save(tmp_path / "good" / "a.png")
    (tmp_path / "broken" / "x.jpg").write_bytes(b"not a jpeg at all")
    ds = ImageDataset.from_folder(tmp_path)
    with pytest.raises(ValueError, match=r"no readable image left in class\(es\) \['broken'\]") as info:
        ds.verify(num_workers=0, progress=False)
    assert "x.jpg: cannot decode" in str(info.value)
    assert len(ds) == 2  # nothing dropped


# -- split ---------------------------------------------------------------------------------------------------


def synthetic(counts: list[int]) -> ImageDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    order = np.random.default_rng(0).permutation(len(labels))
    names = [f"class{i}" for i in range(len(counts))]
    return ImageDataset.from_samples([f"img{i}.png" for i in order], labels[order], names)


def test_split_is_stratified_per_class():
    ds = synthetic([10, 20, 30, 1, 2])
    first, rest = ds.split(0.8)
    assert list(first.class_counts().values()) == [8, 16, 24, 1, 1]
    assert list(rest.class_counts().values()) == [2, 4, 6, 0, 1]  # 1-image class: first part only
    assert first.index_to_label == rest.index_to_label == ds.index_to_label
    assert set(first.paths).isdisjoint(rest.paths) and set(first.paths) | set(rest.paths) == set(ds.paths)
    position = {path: i for i, path in enumerate(ds.paths)}
    assert [position[p] for p in first.paths] == sorted(position[p] for p in first.paths)  # order kept
    lookup = dict(zip(ds.paths, ds.labels.tolist(), strict=True))
    assert all(lookup[path] == label for path, label in zip(first.paths, first.labels.tolist(), strict=True))


def test_split_is_reproducible_and_depends_on_seed():
    ds = synthetic([10, 20, 30])
    assert ds.split(0.5, seed=1)[0].paths == ds.split(0.5, seed=1)[0].paths
    assert ds.split(0.5, seed=1)[0].paths != ds.split(0.5, seed=2)[0].paths
    val, test = ds.split(0.8)[1].split(0.5)  # the Model Maker recipe
    assert len(val) == len(test) == 6


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True])
def test_split_fraction_must_be_between_0_and_1(fraction):
    with pytest.raises(ValueError, match="fraction must be between 0 and 1"):
        synthetic([4, 4]).split(fraction)


def test_split_of_a_real_folder_with_a_one_image_class(tmp_path, digits):
    for name, count in (("many", 9), ("single", 1)):
        (tmp_path / name).mkdir()
        for i in range(count):
            digit(digits, i).save(tmp_path / name / f"{i}.png")
    first, rest = ImageDataset.from_folder(tmp_path).split(0.6)
    assert first.class_counts() == {"many": 5, "single": 1}
    assert rest.class_counts() == {"many": 4, "single": 0}


def test_from_samples_checks_its_arguments():
    with pytest.raises(ValueError, match=r"labels must be integers in 0..1"):
        ImageDataset.from_samples(["a.png"], [2], ["x", "y"])
    with pytest.raises(ValueError, match="got 2 paths"):
        ImageDataset.from_samples(["a.png", "b.png"], [0], ["x", "y"])
    with pytest.raises(ValueError, match="unique class names"):
        ImageDataset.from_samples(["a.png"], [0], ["x", "x"])


# -- CSV -----------------------------------------------------------------------------------------------------


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("path", "label")) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def csv_images(tmp_path, digits) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        digit(digits, i).save(images / f"{i}.png")
    return images


def test_from_csv_resolves_relative_paths_and_reports_missing_files(tmp_path, csv_images, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    rows = [(f"images/{i}.png", "even" if i % 2 == 0 else "odd") for i in range(5)]
    rows += [(str(csv_images / "5.png"), "odd"), ("images/gone.png", "even")]  # absolute path; missing file
    ds = ImageDataset.from_csv(write_csv(tmp_path / "labels.csv", rows))
    assert ds.index_to_label == ["even", "odd"]
    assert ds.paths == [str(csv_images / f"{i}.png") for i in range(6)]
    assert ds.labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert [Path(s.path).name for s in ds.skipped] == ["gone.png"]
    (record,) = dataset_records(caplog)
    assert "gone.png: cannot decode (file not found)" in record.getMessage()
    assert len(ds.load_arrays(EvalTransform(PRE), num_workers=0, progress=False)[0]) == 6


def test_from_csv_with_root_and_numeric_labels(tmp_path, csv_images):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rows = [(f"{i}.png", str(label)) for i, label in enumerate([2, 10, 2, 10, 9, 9])]
    ds = ImageDataset.from_csv(
        write_csv(elsewhere / "x.csv", rows, ("file", "class")), "file", "class", csv_images
    )
    assert ds.index_to_label == ["2", "9", "10"]  # integer labels sort by value
    assert ds.paths[0] == os.path.join(csv_images, "0.png")


def test_from_csv_names_the_columns_it_found(tmp_path):
    path = write_csv(tmp_path / "x.csv", [("a.png", "cat")], ("filename", "label"))
    with pytest.raises(ValueError, match=r"no column 'path'; found columns \['filename', 'label'\]"):
        ImageDataset.from_csv(path)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: CSV file not found"):
        ImageDataset.from_csv(tmp_path / "nope.csv")


def test_from_csv_needs_two_classes_with_files(tmp_path, csv_images):
    one_class = write_csv(tmp_path / "one.csv", [("images/0.png", "cat"), ("images/1.png", "cat")])
    with pytest.raises(ValueError, match=r"found 1 distinct label\(s\) \['cat'\]"):
        ImageDataset.from_csv(one_class)
    no_files = write_csv(tmp_path / "gone.csv", [("images/0.png", "cat"), ("images/nope.png", "dog")])
    with pytest.raises(ValueError, match=r"no listed file exists for class\(es\) \['dog'\]"):
        ImageDataset.from_csv(no_files)


def test_workers_fall_back_to_this_process_when_a_fork_unsafe_runtime_is_loaded(monkeypatch):
    """After LiteRT export (which loads JAX), worker processes would either fork a threaded runtime or
    re-import the user's script; decoding then happens in this process."""
    import types

    from effnet.data import dataset

    for name in dataset._FORK_UNSAFE:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert dataset._resolve_workers(2, tasks=10) == 2
    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    assert dataset._resolve_workers(None, tasks=10) == 0
    assert dataset._resolve_workers(4, tasks=10) == 0
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0"):
        dataset._resolve_workers(-1, tasks=10)  # arguments are still checked


def test_slow_files_are_named_in_one_message(folder, caplog, monkeypatch):
    import effnet.data.dataset as dataset_module

    monkeypatch.setattr(dataset_module, "SLOW_DECODE_SECONDS", 0.0)  # every file counts as slow
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ds = ImageDataset.from_folder(folder, shuffle=False)
    list(ds.iter_batches(EvalTransform(PRE), batch_size=4, num_workers=2))
    slow = [r.getMessage() for r in dataset_records(caplog) if "to decode" in r.getMessage()]
    assert len(slow) == 1
    assert slow[0].startswith("19 of 19 images took over 0.0 s each to decode")
    assert "downscaling them once" in slow[0] and "... and 14 more" in slow[0]
    assert sum(os.fspath(folder) in line for line in slow[0].splitlines()) == 5  # the 5 slowest, by name


def test_no_slow_message_for_quick_files(folder, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ds = ImageDataset.from_folder(folder, shuffle=False)
    list(ds.iter_batches(EvalTransform(PRE), batch_size=4, num_workers=0))
    assert not [r for r in dataset_records(caplog) if "to decode" in r.getMessage()]


def test_entries_left_out_of_the_listing_are_kept(tmp_path, digits):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        digit(digits, 0).save(tmp_path / label / "0.png")
    (tmp_path / "a" / "broken.jpg").symlink_to("missing.jpg")
    os.mkfifo(tmp_path / "b" / "pipe.png")
    ds = ImageDataset.from_folder(tmp_path)
    assert [(Path(e.path).name, e.reason) for e in ds.left_out] == [
        ("broken.jpg", "broken symlink (its target does not exist)"),
        ("pipe.png", "a FIFO (named pipe), not a regular file"),
    ]
    assert len(ds) == 2
