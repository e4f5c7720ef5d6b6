"""IResNet (insightface arcface_torch), the face-recognition baseline: blocks per stage of each named depth,
and the config `effnet.create_model` reads. The module itself (not an MBConv network) is
`effnet.models.iresnet.IResNet`."""

from __future__ import annotations

from dataclasses import dataclass, field

from effnet.preprocessing import Preprocessing

FAMILY = "iresnet"
WIDTHS = (64, 128, 256, 512)
DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
# insightface feeds aligned 112x112 crops scaled as (x - 127.5) / 127.5, no resize or crop
FACE_PREPROCESSING = Preprocessing(
    input_size=(112, 112), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0, interpolation="bilinear"
)


@dataclass(frozen=True)
class IResNetConfig:
    """A named IResNet: block counts per stage; the fields callers of `get_config` read are shared with
    `ModelConfig` (name, family, preprocessing, resolution, top1, macs)."""

    name: str
    layers: tuple[int, int, int, int]
    embedding_dim: int = 512
    family: str = FAMILY
    preprocessing: Preprocessing = field(default_factory=lambda: FACE_PREPROCESSING)
    top1: float | None = None
    macs: int | None = None
    tf_same_padding: bool = False
    paper: str = "ArcFace (Deng et al. 2019), arcface_torch iresnet.py"

    @property
    def resolution(self) -> int:
        return self.preprocessing.input_size[0]


CONFIGS = tuple(IResNetConfig(name, layers) for name, layers in DEPTHS.items())


def is_iresnet(model_or_config) -> bool:
    """Whether ``model_or_config`` (a config from `get_config`, or a model built from one) is an IResNet: the
    one question every caller asks, answered from the config's type."""
    return isinstance(getattr(model_or_config, "config", model_or_config), IResNetConfig)
