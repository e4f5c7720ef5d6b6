"""Object-detection datasets: image files with boxes and labels, read from Pascal VOC XML, TFLite Model
Maker's CSV or COCO JSON.

`DetectionData` is the Model Maker ``object_detector.DataLoader``:
``DetectionData.from_pascal_voc("images", "annotations", {1: "cat", 2: "dog"}).split(0.8)``.

Boxes are float32 (K, 4) ``(xmin, ymin, xmax, ymax)`` in pixels of the image as effnet decodes it, which is
the image as displayed: `effnet.data.images.load_image` applies the EXIF orientation, so ``width`` and
``height`` are the displayed size (a phone photo stored 4032x3024 with orientation 6 is 3024x4032 here).
Labels are int64 indices into ``label_names`` (no background class).

The loaders never decode pixels: they read each image's header (Pillow opens files lazily) to check that it
is an image and to learn its displayed size. Files or boxes that cannot be used are left out, each with a
message naming the file (and the line, for CSV) and the reason, collected in `DetectionData.skipped` and
logged once; see `effnet.data.detection_readers` for the rules.

numpy and Pillow only (no torch), like the classifier's datasets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effnet.data.annotated import AnnotatedImages, SkippedAnnotation

__all__ = ["DetectionData", "DetectionSample", "SkippedAnnotation"]


@dataclass(frozen=True, eq=False)
class DetectionSample:
    """One image file and its objects: ``boxes`` float32 (K, 4) ``(xmin, ymin, xmax, ymax)`` in pixels of the
    displayed image, ``labels`` int64 (K,), and the displayed ``width`` and ``height``. K may be 0: an image
    with no objects (a negative image) teaches the detector what is background."""

    path: Path
    boxes: np.ndarray
    labels: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(boxes) != len(labels):
            raise ValueError(
                f"{self.path}: {len(boxes)} boxes but {len(labels)} labels; pass one label per box"
            )
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)


class DetectionData(AnnotatedImages[DetectionSample]):
    """Images with boxes and labels, plus the class names (``label_names[i]`` names label ``i``).

    Build one with `from_pascal_voc`, `from_csv` or `from_coco` (or from `DetectionSample` s); divide it
    with `split`; hand the ground truth to a COCO evaluator with `to_coco_dict`. Also available as
    ``effnet.object_detector.DataLoader``.
    """

    def __init__(self, samples: Sequence[DetectionSample], label_names: Sequence[str]) -> None:
        names = [str(name) for name in label_names]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"label_names must be non-empty, unique class names; got {names!r}")
        for sample in samples:
            if sample.labels.size and (sample.labels.min() < 0 or sample.labels.max() >= len(names)):
                raise ValueError(
                    f"{sample.path}: labels {np.unique(sample.labels).tolist()} are not all in "
                    f"0..{len(names) - 1} (indices into label_names {names})"
                )
        super().__init__(samples, names)
        self._clipped: list[SkippedAnnotation] = []

    # -- loaders ------------------------------------------------------------------------------------------

    @classmethod
    def from_pascal_voc(
        cls,
        images_dir: str | os.PathLike,
        annotations_dir: str | os.PathLike,
        label_map: Any,
        annotation_filenames: Sequence[str] | None = None,
        ignore_difficult_instances: bool = False,
        num_shards: int = 100,
        max_num_images: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_prefix_filename: str | None = None,
    ) -> DetectionData:
        """Pascal VOC: one XML file per image in ``annotations_dir``, images in ``images_dir``.

        ``label_map``: the classes to keep and their order, as Model Maker takes it: a dict
        ``{1: "cat", 2: "dog"}`` (ids from 1; 0 is the background), a list of names, or the path of a file
        (``.yaml``/``.yml`` ``1: cat`` lines, ``.json`` dict or list, ``.pbtxt``
        ``item { id: 1 name: 'cat' }``, anything else one name per line). Objects of other classes are
        dropped (and named in `skipped`).

        Each XML's ``<filename>`` names its image in ``images_dir`` (when that file does not exist, an image
        named like the XML file is used). Files are read in sorted name order, or in the order of
        ``annotation_filenames`` (names with or without ``.xml``); ``max_num_images`` keeps the first N;
        ``ignore_difficult_instances`` leaves out objects marked ``<difficult>1</difficult>``. ``num_shards``,
        ``cache_dir`` and ``cache_prefix_filename`` are accepted for Model Maker compatibility and ignored:
        nothing is cached, reading the annotations is fast.
        """
        from effnet.data.detection_readers import read_pascal_voc

        del (
            num_shards,
            cache_dir,
            cache_prefix_filename,
        )  # Model Maker's TFRecord cache: nothing to cache here
        return read_pascal_voc(
            cls,
            images_dir,
            annotations_dir,
            label_map,
            annotation_filenames=annotation_filenames,
            ignore_difficult_instances=ignore_difficult_instances,
            max_num_images=max_num_images,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike,
        images_dir: str | os.PathLike | None = None,
        delimiter: str = ",",
        quotechar: str = '"',
        num_shards: int = 10,
        max_num_images: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_prefix_filename: str | None = None,
    ) -> tuple[DetectionData, DetectionData, DetectionData]:
        """TFLite Model Maker's (and Google AutoML's) detection CSV -> ``(train, validation, test)``.

        One row per object, no header: ``set,image,label,xmin,ymin,,,xmax,ymax,,`` or the 4-corner form
        ``set,image,label,x1,y1,x2,y1,x2,y2,x1,y2``, coordinates as fractions 0..1 of the image's width and
        height; ``set`` is TRAINING, VALIDATION or TEST (TRAIN, VALIDATE and UNASSIGNED are read as TRAINING,
        VALIDATION and TRAINING). A row with only ``set,image`` lists an image without objects. Relative
        image paths are resolved against ``images_dir``, or the CSV file's folder when None. Labels are
        numbered in sorted name order, the same in all three parts; a part with no rows is an empty
        `DetectionData`. ``max_num_images`` keeps the first N images of each part; ``num_shards``,
        ``cache_dir`` and ``cache_prefix_filename`` are accepted for Model Maker compatibility and ignored.
        """
        from effnet.data.detection_readers import read_csv

        del num_shards, cache_dir, cache_prefix_filename
        return read_csv(
            cls, path, images_dir, delimiter=delimiter, quotechar=quotechar, max_num_images=max_num_images
        )

    @classmethod
    def from_coco(
        cls, annotations_json: str | os.PathLike, images_dir: str | os.PathLike, include_crowd: bool = False
    ) -> DetectionData:
        """A COCO annotations file (``images``, ``annotations`` with ``bbox`` ``[x, y, width, height]`` in
        pixels, ``categories``) and the folder its ``file_name`` s are in.

        Categories become labels 0..C-1 in category-id order, named by their ``name``. Images without
        annotations are kept as negative images. Crowd regions (``iscrowd: 1``) are left out unless
        ``include_crowd``: they cover many objects with one box, which a detector cannot learn from.
        """
        from effnet.data.detection_readers import read_coco

        return read_coco(cls, annotations_json, images_dir, include_crowd=include_crowd)

    # -- views --------------------------------------------------------------------------------------------

    @property
    def label_map(self) -> dict[int, str]:
        """Model Maker's form of the class names: ``{1: label_names[0], 2: ...}`` (0 is the background)."""
        return {index + 1: name for index, name in enumerate(self._label_names)}

    @property
    def clipped(self) -> list[SkippedAnnotation]:
        """Boxes that reached past the image and were clipped to it (kept), with the file and the change."""
        return list(self._clipped)

    def object_counts(self) -> dict[str, int]:
        """Objects per class, in label order (classes without objects included, with 0)."""
        labels = [sample.labels for sample in self._samples]
        counts = np.bincount(np.concatenate(labels) if labels else [], minlength=self.num_classes)
        return {name: int(count) for name, count in zip(self._label_names, counts, strict=True)}

    def __repr__(self) -> str:
        objects = sum(len(sample.labels) for sample in self._samples)
        shown = ", ".join(map(repr, self._label_names[:5])) + (", ..." if self.num_classes > 5 else "")
        skipped = f", skipped={len(self._skipped)}" if self._skipped else ""
        return f"DetectionData(size={len(self)}, objects={objects}, labels=[{shown}]{skipped})"

    # -- evaluation ---------------------------------------------------------------------------------------

    def to_coco_dict(self) -> dict[str, Any]:
        """The ground truth as a COCO annotations dict (what pycocotools' ``COCO`` loads): image ids are the
        sample indices, category ids are label + 1, annotation ids count from 1 (pycocotools reads id 0 as
        "no match"), ``bbox`` is ``[x, y, width, height]`` in pixels."""
        images, annotations = [], []
        for image_id, sample in enumerate(self._samples):
            images.append(
                {
                    "id": image_id,
                    "file_name": str(sample.path),
                    "width": sample.width,
                    "height": sample.height,
                }
            )
            for box, label in zip(sample.boxes.tolist(), sample.labels.tolist(), strict=True):
                width, height = box[2] - box[0], box[3] - box[1]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": label + 1,
                        "bbox": [box[0], box[1], width, height],
                        "area": width * height,
                        "iscrowd": 0,
                    }
                )
        categories = [
            {"id": index + 1, "name": name, "supercategory": "none"}
            for index, name in enumerate(self._label_names)
        ]
        return {"images": images, "annotations": annotations, "categories": categories}
