"""Training settings of `object_detector.create`, sized for a CPU."""

from __future__ import annotations

from dataclasses import dataclass

from effnet.models.detection.spec import DEFAULT_IOU_THRESHOLD
from effnet.training.dense_hparams import FINE_TUNING_EPOCHS, FROZEN_EPOCHS, DenseHParams
from effnet.validation import check_integer, check_number

__all__ = ["EVALUATION_SCORE_THRESHOLD", "FINE_TUNING_EPOCHS", "FROZEN_EPOCHS", "DetectorHParams"]

# the COCO evaluation protocol's score threshold
EVALUATION_SCORE_THRESHOLD = 0.001


@dataclass
class DetectorHParams(DenseHParams):
    """Settings of one detector training run; ``None`` fields are resolved by `resolved()` (epochs:
    `FROZEN_EPOCHS` with a frozen backbone, `FINE_TUNING_EPOCHS` when fine-tuning).

    The optimizer follows EfficientDet (google/automl `efficientdet/hparams_config.py`): SGD with momentum
    0.9, learning rate 0.08, weight decay 4e-5, gradient norm clipped at 10, a linear warm-up then cosine
    decay. automl uses 0.08 at batch 64; at the CPU-sized batch of 8 the same rate trained the new neck and
    heads fastest (SSDLite, frozen backbone, 80 generated images, 15 epochs: AP50 0.49 at 0.02, 0.61 at
    0.08, 0.58 at 0.2), so it is used as given, not scaled down with the batch.
    ``input_size``: the square side images are resized to (None: the model's, e.g. 320 for Lite0).
    ``flip``: horizontal flips (with their boxes) as augmentation; a frozen backbone caches the flipped
    images' features once, next to the plain ones. ``probe_epochs``: when fine-tuning, first train the new
    neck and heads this many epochs on a frozen backbone (cached features, cheap), so the whole-network
    epochs start from useful heads instead of random ones.
    ``score_threshold``, ``iou_threshold``, ``max_detections``: the post-processing (per-class NMS) that
    `ObjectDetector.evaluate` runs and that `ObjectDetector.export` writes into the file, one setting for
    both, so the exported file scores what `evaluate` reported; ``max_detections`` None is the model spec's
    ``tflite_max_detections``.
    """

    learning_rate: float = 0.08
    weight_decay: float = 4e-5
    # the post-processing `evaluate` runs and the exported file holds, so that the file scores what
    # `evaluate` said: None takes the model spec's ``tflite_max_detections``; COCO's low score threshold
    # keeps the recall (the file's NMS takes a fixed top-k, so it costs no latency), and applications
    # filter the file's output further (`effnet.runtime` ``detect(score_threshold=...)``)
    max_detections: int | None = None
    score_threshold: float = EVALUATION_SCORE_THRESHOLD
    iou_threshold: float = DEFAULT_IOU_THRESHOLD

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of its range."""
        super().validate()
        if self.max_detections is not None:
            check_integer("max_detections", self.max_detections, 1)
        check_number("score_threshold", self.score_threshold, at_least=0, below=1)
        check_number("iou_threshold", self.iou_threshold, above=0, at_most=1)
