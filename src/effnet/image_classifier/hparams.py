"""Training settings of `image_classifier.create`, with Model Maker's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from effnet.validation import check_integer, check_number

# epochs when `HParams.epochs` is None: Model Maker's 5 when fine-tuning; 50 for a frozen backbone (HParams)
FINE_TUNING_EPOCHS = 5
FROZEN_EPOCHS = 50


@dataclass
class HParams:
    """Settings of one training run. ``None`` fields are resolved by `resolved()`.

    The defaults are TFLite Model Maker's (batch 32, SGD lr 0.005 with momentum 0.9, dropout 0.2, label
    smoothing 0.1, L2 1e-4, 5 epochs), except that a frozen-backbone run defaults to 50 epochs: it trains
    on cached features, where an epoch costs milliseconds, and 5 epochs leave the linear head under-fit
    (Lite0 on digits, mean of 5 splits: 20 epochs 94.9%, 50 epochs 95.7%, 100 epochs 96.1%).
    """

    epochs: int | None = None
    batch_size: int = 32
    learning_rate: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 1e-4
    dropout_rate: float = 0.2
    label_smoothing: float = 0.1
    train_whole_model: bool = False
    use_augmentation: bool = False
    warmup_steps: int | None = None
    shuffle: bool = True
    seed: int = 0
    # augmentation (fine-tuning; frozen runs extract features of `augment_views` augmented copies)
    crop_scale: tuple[float, float] = (0.25, 1.0)
    flip: bool = True
    color_jitter: float = 0.0
    augment_views: int = 2
    # BatchNorm when fine-tuning: "auto" keeps the pretrained running statistics (and uses them in training)
    # when starting from pretrained weights, as Keras advises: batch statistics of a small, unfamiliar
    # dataset shift every feature the head was fitted on. From random init the statistics are learned.
    freeze_bn: bool | str = "auto"
    # fine-tuning starts from a linear head fitted on frozen features ("LP-FT", Kumar et al. 2022): a random
    # head's large early gradients would otherwise wreck the pretrained features
    probe_first: bool = True
    probe_epochs: int = 50
    # the pretrained backbone learns at this fraction of the head's learning rate when fine-tuning
    backbone_lr_scale: float = 0.1
    num_workers: int | None = None
    # stochastic depth of the last block when fine-tuning (None: the model's default)
    drop_path_rate: float | None = None
    # stop fine-tuning after this many epochs without a better validation accuracy (None: never)
    early_stopping_patience: int | None = None
    # linear scaling: learning_rate is meant for this many samples per step and is scaled by
    # batch_size / lr_base_batch (Goyal et al. 2017). None: learning_rate is used as given, for batch_size
    # (Model Maker's convention: 0.005 at batch 32). batch_size is the global batch under torchrun.
    lr_base_batch: int | None = None

    def resolved(self, steps_per_epoch: int) -> HParams:
        default = FINE_TUNING_EPOCHS if self.train_whole_model else FROZEN_EPOCHS
        epochs = self.epochs if self.epochs is not None else default
        warmup = self.warmup_steps
        if warmup is None:  # about one epoch of linear warm-up when fine-tuning, none for a linear head
            warmup = min(steps_per_epoch, 500) if self.train_whole_model else 0
        return HParams(**{**asdict(self), "epochs": epochs, "warmup_steps": warmup})

    def bn_frozen(self, pretrained: bool = True) -> bool:
        return pretrained if self.freeze_bn == "auto" else bool(self.freeze_bn)

    def validate(self) -> None:
        """Raise ValueError naming the first setting that is not a number of the right kind and range."""
        check_integer("batch_size", self.batch_size, 1)
        check_integer("probe_epochs", self.probe_epochs, 1)
        check_integer("augment_views", self.augment_views, 0)
        check_integer("seed", self.seed)
        for name, minimum in (
            ("epochs", 1),
            ("warmup_steps", 0),
            ("num_workers", 0),
            ("early_stopping_patience", 1),
            ("lr_base_batch", 1),
        ):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), minimum)
        check_number("learning_rate", self.learning_rate, above=0)
        check_number("momentum", self.momentum, at_least=0, at_most=1)
        check_number("weight_decay", self.weight_decay, at_least=0)
        check_number("dropout_rate", self.dropout_rate, at_least=0, below=1)
        check_number("label_smoothing", self.label_smoothing, at_least=0, below=1)
        check_number("color_jitter", self.color_jitter, at_least=0)
        check_number("backbone_lr_scale", self.backbone_lr_scale, at_least=0)
        if self.drop_path_rate is not None:
            check_number("drop_path_rate", self.drop_path_rate, at_least=0, below=1)
        if len(self.crop_scale) != 2:
            raise ValueError(f"crop_scale must be (smallest, largest) area fraction, got {self.crop_scale!r}")
        low, high = self.crop_scale
        check_number("crop_scale[0]", low, above=0, at_most=1)
        check_number("crop_scale[1]", high, at_least=low, at_most=1)

    def to_dict(self) -> dict:
        return asdict(self)
