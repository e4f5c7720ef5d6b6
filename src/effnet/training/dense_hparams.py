"""The settings a detector and a segmenter share: `DenseHParams`, the base of `DetectorHParams` and
`SegmenterHParams` (their common fields, defaults, checks and epoch defaults), and `resolve_hparams`, which
turns the arguments of their ``create()`` into one checked, resolved settings object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, TypeVar

from effnet.validation import check_integer, check_number

# epochs when `DenseHParams.epochs` is None: a frozen backbone trains the head on cached features (an epoch
# costs a fraction of a fine-tuning one), so it gets more of them
FROZEN_EPOCHS = 30
FINE_TUNING_EPOCHS = 10

Settings = TypeVar("Settings", bound="DenseHParams")


@dataclass
class DenseHParams:
    """Settings of one dense-prediction training run (SGD with momentum, a warm-up then cosine decay);
    ``None`` fields are resolved by `resolved()`. A task's subclass sets its own defaults and adds fields.

    ``input_size``: the square side images are resized to. ``flip``: horizontal flips as augmentation; a
    frozen backbone caches the flipped images' features once, next to the plain ones. ``probe_epochs``: when
    fine-tuning, first train the new head this many epochs on a frozen backbone (cached features, cheap).
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
    flip: bool = True
    shuffle: bool = True
    seed: int = 0
    # the pretrained backbone learns at this fraction of the learning rate when fine-tuning
    backbone_lr_scale: float = 0.1
    num_workers: int | None = 0

    min_batch_size: ClassVar[int] = 1

    def resolved(self: Settings) -> Settings:
        """A copy with ``epochs`` set (`FINE_TUNING_EPOCHS` or `FROZEN_EPOCHS` when None)."""
        if self.epochs is not None:
            return replace(self)
        return replace(self, epochs=FINE_TUNING_EPOCHS if self.train_whole_model else FROZEN_EPOCHS)

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of its range."""
        check_integer("batch_size", self.batch_size, self.min_batch_size)
        check_integer("seed", self.seed)
        for name, minimum in (("epochs", 1), ("input_size", 32), ("num_workers", 0)):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), minimum)
        check_integer("probe_epochs", self.probe_epochs, 0)
        check_number("learning_rate", self.learning_rate, above=0)
        check_number("momentum", self.momentum, at_least=0, at_most=1)
        check_number("weight_decay", self.weight_decay, at_least=0)
        check_number("clip_grad_norm", self.clip_grad_norm, above=0)
        check_number("warmup_epochs", self.warmup_epochs, at_least=0)
        check_number("backbone_lr_scale", self.backbone_lr_scale, at_least=0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[Settings], values: dict) -> Settings:
        """The settings of ``values`` (a `to_dict` of a saved run); keys that are no field are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def resolve_hparams(
    cls: type[Settings],
    hparams: Settings | None,
    given: dict[str, Any],
    kwargs: dict[str, Any],
    train_whole_model: bool,
    reference: str,
) -> Settings:
    """The settings of one ``create()`` call, checked and resolved: ``hparams`` (else ``cls()``), overridden
    by ``given`` (create()'s own arguments; None: not given), by ``kwargs`` (other ``cls`` fields) and by
    ``train_whole_model``. A name in ``kwargs`` that is no field raises TypeError pointing to ``reference``
    (the settings class's public name)."""
    unknown = sorted(set(kwargs) - {f.name for f in fields(cls)})
    if unknown:
        raise TypeError(f"create() got unknown arguments {unknown}; see {reference}")
    base = hparams or cls()
    settings = {**base.to_dict(), **{k: v for k, v in given.items() if v is not None}, **kwargs}
    settings["train_whole_model"] = bool(train_whole_model)
    hp = cls(**settings)
    hp.validate()
    return hp.resolved()
