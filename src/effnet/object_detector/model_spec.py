"""Model Maker's detector specs: ``model_spec.get("efficientdet_lite0")`` or ``EfficientDetSpec(...)``.

TFLite Model Maker's `EfficientDetSpec` named a TF Hub module (``uri``) and an automl config override
(``hparams``, e.g. ``"image_size=256x256"``). effnet builds its detectors by name
(`effnet.models.detection.list_detectors`): a ``uri`` is accepted only when it names one of them, and of the
``hparams`` overrides ``image_size`` is read. Model Maker's names (``efficientdet-lite0``) work alike; its
other arguments (``var_freeze_expr``, ``strategy``, ``tpu``, ``use_xla`` ...) are accepted and kept, and
change nothing: effnet freezes the backbone only (``train_whole_model``) and trains on one process or
under torchrun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MODEL_MAKER_NAMES = ("efficientdet_lite0", "efficientdet_lite1", "efficientdet_lite2", "efficientdet_lite3",
                     "efficientdet_lite4")  # fmt: skip


@dataclass(frozen=True)
class EfficientDetSpec:
    """A detector to train: ``model_name`` is any of `effnet.models.detection.list_detectors()`
    (``efficientdet_lite0`` ... ``lite4``, ``ssdlite_mobilenet_v2`` ...).

    ``hparams``: a dict or Model Maker's ``"name=value,..."`` string; ``image_size`` (an int or ``"256x256"``)
    sets the input size. ``epochs`` / ``batch_size``: the defaults `object_detector.create` uses when its own
    are None (None here: effnet's CPU-sized defaults, `DetectorHParams`). ``tflite_max_detections``: the
    detections an exported file keeps per image.
    """

    model_name: str = "efficientdet_lite0"
    uri: str | None = None
    hparams: str | dict = field(default_factory=dict)
    model_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    tflite_max_detections: int = 25
    pretrained: bool = True
    # Model Maker's, accepted for its code and not used (see the module docstring)
    steps_per_execution: int = 1
    moving_average_decay: float = 0
    var_freeze_expr: str = "(efficientnet|fpn_cells|resample_p6)"
    strategy: str | None = None
    tpu: str | None = None
    gcp_project: str | None = None
    tpu_zone: str | None = None
    use_xla: bool = False
    profile: bool = False
    debug: bool = False
    tf_random_seed: int = 111111
    verbose: int = 0

    def __post_init__(self) -> None:
        from effnet.models.detection import list_detectors

        name = str(self.model_name).replace("-", "_")  # Model Maker's "efficientdet-lite0"
        object.__setattr__(self, "model_name", name)
        if self.uri is not None:
            match = re.search(r"efficientdet[/_-]?(lite\d)", self.uri)
            if not match:
                raise ValueError(
                    f"EfficientDetSpec(uri={self.uri!r}): effnet does not use TF Hub; pass "
                    f"model_name= one of {', '.join(list_detectors())}"
                )
            name = f"efficientdet_{match[1]}"
            object.__setattr__(self, "model_name", name)
        if name not in list_detectors():
            known = ", ".join(list_detectors())
            raise ValueError(f"model_spec {name!r} is not a detector effnet knows; choose one of {known}")
        self.input_size  # noqa: B018 -- parse the overrides now: a bad one fails here, not after training

    @property
    def name(self) -> str:
        return self.model_name

    @property
    def input_size(self) -> int | None:
        """The square input side ``hparams`` asks for (``image_size``), else None (the model's own)."""
        overrides = self.hparams
        if isinstance(overrides, str):
            overrides = dict(
                part.split("=", 1) for part in overrides.replace(" ", "").split(",") if "=" in part
            )
        value = overrides.get("image_size")
        if value is None:
            return None
        sides = {int(side) for side in str(value).lower().split("x")} if str(value).strip() else set()
        if len(sides) != 1 or min(sides) < 32:
            raise ValueError(
                f"EfficientDetSpec hparams image_size={value!r}: effnet detectors take a square input of at "
                "least 32 px; pass e.g. image_size=320 or '320x320'"
            )
        return sides.pop()


def get(spec: str | EfficientDetSpec) -> EfficientDetSpec:
    """The spec of a detector by name (Model Maker's ``model_spec.get('efficientdet_lite0')``)."""
    if isinstance(spec, EfficientDetSpec):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"model_spec must be a detector name or an EfficientDetSpec, got {type(spec).__name__}"
        )
    return EfficientDetSpec(spec)


def _named(name: str):
    def spec(**kwargs) -> EfficientDetSpec:
        return EfficientDetSpec(**{"model_name": name, **kwargs})

    spec.__name__ = spec.__qualname__ = "EfficientDet" + name.split("_")[1].capitalize() + "Spec"
    spec.__doc__ = f"Model Maker's ``{spec.__name__}(...)``: `EfficientDetSpec` of {name}."
    return spec


EfficientDetLite0Spec = _named("efficientdet_lite0")
EfficientDetLite1Spec = _named("efficientdet_lite1")
EfficientDetLite2Spec = _named("efficientdet_lite2")
EfficientDetLite3Spec = _named("efficientdet_lite3")
EfficientDetLite4Spec = _named("efficientdet_lite4")
