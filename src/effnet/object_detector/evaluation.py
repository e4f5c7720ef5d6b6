"""COCO metrics of detections, computed by pycocotools' COCOeval (the evaluator TFLite Model Maker and
google/automl report), returned as Model Maker's dict: ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``,
``APl``, ``ARmax1``, ``ARmax10``, ``ARmax100``, ``ARs``, ``ARm``, ``ARl`` and ``AP_/<label>`` per class.

A value COCO cannot compute (no ground-truth box of that size, or of that class) is -1, as COCOeval gives it.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# COCOeval.stats, in order (pycocotools `cocoeval.py`, `summarize`), under Model Maker's names
# (tensorflow/examples `lite/model_maker/third_party/efficientdet/coco_metric.py`)
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl")


class Detections(NamedTuple):
    """One image's detections: ``boxes`` float32 [D, 4] xyxy pixels, ``scores`` [D], ``labels`` int64 [D]."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def missing_pycocotools() -> ImportError:
    return ImportError(
        "evaluating a detector needs pycocotools (COCO's evaluator): pip install 'effnet[detection]' "
        "(or pip install pycocotools)"
    )


def coco_results(detections: Sequence[Detections], image_ids: Sequence[int]) -> list[dict]:
    """Detections as COCO result rows (bbox = x, y, width, height; category id = label + 1)."""
    rows = []
    for image_id, found in zip(image_ids, detections, strict=True):
        for box, score, label in zip(found.boxes.tolist(), found.scores.tolist(), found.labels.tolist(),
                                     strict=True):  # fmt: skip
            x0, y0, x1, y1 = box
            rows.append({
                "image_id": int(image_id), "category_id": int(label) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score),
            })  # fmt: skip
    return rows


def coco_metrics(
    ground_truth: dict, detections: Sequence[Detections], image_ids: Sequence[int], label_names: Sequence[str]
) -> dict[str, float]:
    """COCO AP / AR of ``detections`` (one per image id in ``image_ids``, boxes in the ground truth's
    pixels) against ``ground_truth`` (a COCO annotations dict, category id = label + 1)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise missing_pycocotools() from None
    truth = copy.deepcopy(ground_truth)
    truth.setdefault("info", {})
    truth.setdefault("licenses", [])
    truth.setdefault("annotations", [])
    truth.setdefault("categories", [{"id": k + 1, "name": str(n)} for k, n in enumerate(label_names)])
    for number, row in enumerate(truth["annotations"], start=1):  # COCOeval needs an id, area, crowd flag
        _, _, w, h = row["bbox"]
        row.setdefault("area", float(w * h))
        row.setdefault("iscrowd", 0)
        row.setdefault("id", number)
    results = coco_results(detections, image_ids)
    names = [f"AP_/{label}" for label in label_names]
    if not results:  # COCO's loadRes refuses an empty list: nothing found is AP 0 where AP is defined
        return _without_detections(truth, names)
    with contextlib.redirect_stdout(io.StringIO()):  # COCO prints progress lines
        coco_truth = COCO()
        coco_truth.dataset = truth
        coco_truth.createIndex()
        evaluator = COCOeval(coco_truth, coco_truth.loadRes(results), iouType="bbox")
        evaluator.params.imgIds = [int(i) for i in image_ids]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    metrics = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats, strict=True)}
    # per class: precision [IoU thresholds, recall points, classes, area ranges, max detections], area "all",
    # 100 detections, averaged over what is defined (-1 marks the undefined), as Model Maker does
    precision = evaluator.eval["precision"]
    category_ids = list(evaluator.params.catIds)
    for label, name in enumerate(names):
        if label + 1 not in category_ids:
            metrics[name] = -1.0
            continue
        values = precision[:, :, category_ids.index(label + 1), 0, -1]
        defined = values[values > -1]
        metrics[name] = float(defined.mean()) if defined.size else -1.0
    return metrics


def _without_detections(truth: dict, names: list[str]) -> dict[str, float]:
    present = {row["category_id"] for row in truth.get("annotations", [])}
    metrics = {name: (0.0 if present else -1.0) for name in STAT_NAMES}
    metrics.update({name: (0.0 if label + 1 in present else -1.0) for label, name in enumerate(names)})
    return metrics
