"""Training settings of `object_detector.create`, sized for a CPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from effnet.models.detection.spec import DEFAULT_IOU_THRESHOLD
from effnet.validation import check_integer, check_number

# the COCO evaluation protocol's score threshold
EVALUATION_SCORE_THRESHOLD = 0.001

# epochs when `DetectorHParams.epochs` is None: a frozen backbone trains the neck and heads on cached features
# (an epoch costs a fraction of a fine-tuning one), so it gets more of them
FROZEN_EPOCHS = 30
FINE_TUNING_EPOCHS = 10


@dataclass
class DetectorHParams:
    """Settings of one detector training run; ``None`` fields are resolved by `resolved()`.

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

    epochs: int | None = None
    batch_size: int = 8
    learning_rate: float = 0.08
    momentum: float = 0.9
    weight_decay: float = 4e-5
    clip_grad_norm: float = 10.0
    warmup_epochs: float = 1.0
    train_whole_model: bool = False
    probe_epochs: int = 0
    input_size: int | None = None
    flip: bool = True
    shuffle: bool = True
    seed: int = 0
    # the pretrained backbone learns at this fraction of the learning rate when fine-tuning
    backbone_lr_scale: float = 0.1
    # the post-processing `evaluate` runs and the exported file holds, so that the file scores what
    # `evaluate` said: None takes the model spec's ``tflite_max_detections``; COCO's low score threshold
    # keeps the recall (the file's NMS takes a fixed top-k, so it costs no latency), and applications
    # filter the file's output further (`effnet.runtime` ``detect(score_threshold=...)``)
    max_detections: int | None = None
    score_threshold: float = EVALUATION_SCORE_THRESHOLD
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    num_workers: int | None = 0

    def resolved(self) -> DetectorHParams:
        epochs = self.epochs
        if epochs is None:
            epochs = FINE_TUNING_EPOCHS if self.train_whole_model else FROZEN_EPOCHS
        return DetectorHParams(**{**asdict(self), "epochs": epochs})

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of its range."""
        check_integer("batch_size", self.batch_size, 1)
        check_integer("seed", self.seed)
        for name, minimum in (("epochs", 1), ("input_size", 32), ("num_workers", 0), ("max_detections", 1)):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), minimum)
        check_integer("probe_epochs", self.probe_epochs, 0)
        check_number("learning_rate", self.learning_rate, above=0)
        check_number("momentum", self.momentum, at_least=0, at_most=1)
        check_number("weight_decay", self.weight_decay, at_least=0)
        check_number("clip_grad_norm", self.clip_grad_norm, above=0)
        check_number("warmup_epochs", self.warmup_epochs, at_least=0)
        check_number("backbone_lr_scale", self.backbone_lr_scale, at_least=0)
        check_number("score_threshold", self.score_threshold, at_least=0, below=1)
        check_number("iou_threshold", self.iou_threshold, above=0, at_most=1)

    def to_dict(self) -> dict:
        return asdict(self)
