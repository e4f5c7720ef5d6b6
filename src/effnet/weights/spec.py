"""What is known about one set of pretrained weights: where it lives, how its keys are named, and the
conventions (padding, BatchNorm eps, preprocessing) its numbers were produced with."""

from __future__ import annotations

from dataclasses import dataclass

from effnet.preprocessing import Preprocessing

NAMINGS = ("effnet", "timm", "torchvision", "efficientnet_pytorch")


@dataclass(frozen=True)
class WeightSpec:
    """One published or bundled weight file for one effnet model.

    location: ``"package:<python module>/<path inside it>"`` for a file shipped inside a pip package
        (offline), or an ``https://`` URL downloaded into the cache.
    naming: the key naming of the file (see `effnet.weights.convert_state_dict`).
    sha256: the file's SHA-256, or a hex prefix of it (torchvision names files with the first 8 hex
        digits); None when unknown.
    padding / bn_eps: the conventions the weights were trained with; loading them selects these.
    preprocessing: the eval preprocessing that reproduces ``top1``.
    requirement / extra: for bundled weights, the pip requirement of their package (``name==version``) and
        the effnet extra that installs it ("" when none does), for the errors that say how to get it.
    """

    model: str
    tag: str
    location: str
    naming: str
    padding: str
    bn_eps: float
    preprocessing: Preprocessing
    sha256: str | None = None
    top1: float | None = None
    num_classes: int = 1000
    license: str = ""
    requirement: str = ""
    extra: str = ""

    def __post_init__(self) -> None:
        if self.naming not in NAMINGS:
            raise ValueError(f"unknown weight naming {self.naming!r}; choose one of {NAMINGS}")

    @property
    def bundled(self) -> bool:
        return self.location.startswith("package:")

    @property
    def filename(self) -> str:
        """The file name in the cache: unique per model and tag, keeps the URL's extension."""
        suffix = ".safetensors" if self.location.endswith(".safetensors") else ".pth"
        return f"{self.model}.{self.tag}{suffix}"
