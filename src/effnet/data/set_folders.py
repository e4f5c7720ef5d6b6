"""Writing a generated data set (`effnet.data.detection_set`, `effnet.data.segmentation_set`) into its folder
once: the writer's arguments checked, the set written into a temporary folder beside ``out_dir`` and moved
into place only when complete, with a manifest of the arguments, so that a folder holding a set written with
the same arguments is returned as it is and any other folder is never overwritten."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from effnet.validation import check_integer


def set_settings(
    writer: str,
    train: int,
    test: int,
    seed: int,
    image_size: int,
    max_objects: int,
    jpeg_quality: int,
    labels: Sequence[str],
) -> dict:
    """The manifest of a generated set: the ``writer``'s arguments, checked (ValueError naming the first one
    out of its range), and the class names."""
    for name, value, minimum in (
        ("train", train, 0),
        ("test", test, 0),
        ("seed", seed, 0),
        ("max_objects", max_objects, 0),
    ):
        check_integer(name, value, minimum)
    check_integer("image_size", image_size, 64)
    check_integer("jpeg_quality", jpeg_quality, 1)
    if train + test == 0:
        raise ValueError(f"{writer}: train and test are both 0; ask for at least one image")
    return {
        "train": train, "test": test, "seed": seed, "image_size": image_size, "max_objects": max_objects,
        "jpeg_quality": jpeg_quality, "labels": list(labels),
    }  # fmt: skip


def write_set_folder(
    out_dir: str | os.PathLike, settings: dict, manifest: str, kind: str, fill: Callable[[Path], None]
) -> Path:
    """``out_dir`` holding the set ``fill(folder)`` writes, with ``settings`` in its ``manifest`` file.

    A folder that already holds a set with these settings is returned as it is; any other existing folder
    that is not empty raises FileExistsError (``kind``: what the set is, for the message)."""
    out = Path(out_dir)
    if out.exists():
        written = out / manifest
        if written.is_file() and json.loads(written.read_text()) == settings:
            return out
        if not out.is_dir() or any(out.iterdir()):
            raise FileExistsError(
                f"{out}: exists and is not a {kind} set written with these arguments; choose a new folder or "
                "remove this one"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        fill(staging)
        (staging / manifest).write_text(json.dumps(settings, indent=1) + "\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
