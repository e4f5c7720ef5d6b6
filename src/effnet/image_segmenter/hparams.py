"""Training settings of `image_segmenter.create`, sized for a CPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from effnet.validation import check_integer, check_number

# epochs when `SegmenterHParams.epochs` is None: a frozen backbone trains the head on cached features (an
# epoch costs a fraction of a fine-tuning one), so it gets more of them
FROZEN_EPOCHS = 30
FINE_TUNING_EPOCHS = 10
DEFAULT_INPUT_SIZE = 256  # the specs' 512 (torchvision's training crop is 480-520) is slow on a CPU


@dataclass
class SegmenterHParams:
    """Settings of one segmenter training run; ``None`` fields are resolved by `resolved()`.

    The optimizer follows torchvision's segmentation reference (references/segmentation/train.py: SGD,
    momentum 0.9, weight decay 1e-4, the learning rate decaying to 0; here after a short warm-up, by a
    cosine). Its rate of 0.02 is for a batch of 32; the head on cached features at a CPU batch of 8 trained
    faster at 0.05. ``input_size``: the square side images and masks are resized to (None:
    `DEFAULT_INPUT_SIZE`). ``flip``: horizontal flips (image and mask); a frozen backbone caches the flipped
    images' features once, next to the plain ones. ``probe_epochs``: when fine-tuning, first train the new
    head this many epochs on a frozen backbone (cached features, cheap). ``output_stride``: 8, 16 or 32
    (None: the spec's 16).
    """

    epochs: int | None = None
    batch_size: int = 8
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip_grad_norm: float = 10.0
    warmup_epochs: float = 1.0
    train_whole_model: bool = False
    probe_epochs: int = 0
    input_size: int | None = None
    output_stride: int | None = None
    flip: bool = True
    shuffle: bool = True
    seed: int = 0
    # the pretrained backbone learns at this fraction of the learning rate when fine-tuning
    backbone_lr_scale: float = 0.1
    num_workers: int | None = 0

    def resolved(self) -> SegmenterHParams:
        epochs = self.epochs
        if epochs is None:
            epochs = FINE_TUNING_EPOCHS if self.train_whole_model else FROZEN_EPOCHS
        size = self.input_size or DEFAULT_INPUT_SIZE
        return SegmenterHParams(**{**asdict(self), "epochs": epochs, "input_size": size})

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of its range."""
        check_integer("batch_size", self.batch_size, 2)  # the head's BatchNorm needs two samples
        check_integer("seed", self.seed)
        for name, minimum in (("epochs", 1), ("input_size", 32), ("num_workers", 0)):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), minimum)
        if self.output_stride is not None and self.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {self.output_stride!r}")
        check_integer("probe_epochs", self.probe_epochs, 0)
        check_number("learning_rate", self.learning_rate, above=0)
        check_number("momentum", self.momentum, at_least=0, at_most=1)
        check_number("weight_decay", self.weight_decay, at_least=0)
        check_number("clip_grad_norm", self.clip_grad_norm, above=0)
        check_number("warmup_epochs", self.warmup_epochs, at_least=0)
        check_number("backbone_lr_scale", self.backbone_lr_scale, at_least=0)

    def to_dict(self) -> dict:
        return asdict(self)
