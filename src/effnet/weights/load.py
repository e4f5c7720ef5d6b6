"""Reading weight files and loading them into a model, with the conventions they were trained with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from effnet.preprocessing import Preprocessing
from effnet.weights.convert import (
    StateDict,
    WeightsMismatchError,
    convert_state_dict,
    detect_naming,
    unwrap_checkpoint,
)

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
METADATA_KEY = "effnet"  # safetensors metadata entry written by effnet (preprocessing, conventions, labels)


class WeightsFileError(ValueError):
    """A weights file that cannot be read."""


@dataclass(frozen=True)
class Conventions:
    """How the weights expect the network to be built and fed."""

    padding: str
    bn_eps: float
    preprocessing: Preprocessing | None = None
    note: str = ""


@dataclass
class LoadReport:
    """What `load_weights` did: where the weights came from and what was not loaded."""

    source: str
    naming: str
    classifier_loaded: bool
    num_classes_in_weights: int

    def __str__(self) -> str:
        text = f"{self.naming} weights from {self.source}"
        if not self.classifier_loaded:
            text += f" (classifier not loaded: the weights have {self.num_classes_in_weights} classes)"
        return text


# what torch.load and safetensors say about a file cut short (an interrupted download or copy)
_TRUNCATED = (
    "central directory",
    "Ran out of input",
    "unexpected EOF",
    "incomplete metadata",
    "invalid header length",  # safetensors: the header says it is longer than the file
    "too small",
)


def read_weights(path: str | Path) -> tuple[StateDict, dict]:
    """The tensors in a ``.pth/.pt/.bin/.ckpt`` or ``.safetensors`` file, and effnet metadata if present."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found; check the path passed as weights=")
    metadata: dict = {}
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(path), framework="pt") as handle:
                raw = (handle.metadata() or {}).get(METADATA_KEY)
            metadata = json.loads(raw) if raw else {}
            state = load_file(str(path))
        else:
            # weights_only: a weights file must not be able to run code when it is opened
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the formats raise many exception types; the user needs one message
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        if isinstance(error, EOFError) or any(sign in str(error) for sign in _TRUNCATED):
            raise WeightsFileError(
                f"{path}: the file is truncated or corrupt ({path.stat().st_size:,} bytes, {reason[:80]}); "
                "download or save it again"
            ) from None
        raise WeightsFileError(
            f"{path}: cannot read weights ({reason}); expected a PyTorch state dict "
            f"({', '.join(WEIGHT_SUFFIXES)}). If the file holds pickled objects you trust, load it with "
            "torch.load(weights_only=False) and pass "
            "the state dict as weights="
        ) from None
    if not isinstance(state, dict):
        raise WeightsFileError(
            f"{path}: holds a {type(state).__name__}, not a state dict; save model.state_dict()"
        )
    return unwrap_checkpoint(state), metadata


# torchvision trained b0-b4 and MobileNetV2 in PyTorch (BN eps 1e-5); its b5-b7 are TF ports and its V2 and
# MobileNetV3 use eps 1e-3 (torchvision/models/efficientnet.py, mobilenetv3.py).
_TORCHVISION_EPS_1E3 = (
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2",
    "mobilenet_v3",
)


def infer_conventions(
    naming: str, model_name: str, path: str | Path | None = None, metadata: dict | None = None
):
    """The padding and BN eps a weights file was trained with, from its naming, model and file name."""
    if naming == "effnet":
        meta = metadata or {}
        pre = meta.get("preprocessing")
        return Conventions(
            padding=meta.get("padding", "symmetric"),
            bn_eps=meta.get("bn_eps", 1e-3),
            preprocessing=Preprocessing.from_dict(pre) if pre else None,
        )
    if naming == "efficientnet_pytorch":  # ports of the TF checkpoints
        return Conventions("same", 1e-3, note="TF-trained weights: TF SAME padding, BN eps 1e-3")
    if naming == "torchvision":
        eps = 1e-3 if model_name.startswith(_TORCHVISION_EPS_1E3) else 1e-5
        return Conventions("symmetric", eps)
    # timm: tf_* models are TF ports (SAME padding, eps 1e-3); its own trainings use PyTorch defaults.
    if path is not None and "tf_" in Path(path).name:
        return Conventions("same", 1e-3, note="timm tf_* weights: TF SAME padding, BN eps 1e-3")
    return Conventions("symmetric", 1e-5)


def load_weights(model: nn.Module, weights: str | Path | dict, source: str = "auto") -> LoadReport:
    """Load weights from a file or a state dict into an effnet model, converting other namings.

    A classifier whose size differs from the model's (ImageNet weights into a 10-class model) is left
    freshly initialized, the usual transfer-learning start; everything else must fit exactly.
    """
    if isinstance(weights, (str, Path)):
        state, _ = read_weights(weights)
        label = str(weights)
    else:
        state, label = unwrap_checkpoint(weights), "a state dict"
    naming = detect_naming(state) if source == "auto" else source
    converted = convert_state_dict(state, model.config, source=naming)
    classes = converted["classifier.weight"].shape[0] if "classifier.weight" in converted else 0
    own = model.state_dict()
    stem = converted.get("stem.conv.weight")
    if stem is not None and stem.shape[1] != own["stem.conv.weight"].shape[1]:
        converted["stem.conv.weight"] = adapt_input_channels(stem, own["stem.conv.weight"].shape[1])
    classifier_loaded = classes == getattr(model, "num_classes", -1) and classes > 0
    if not classifier_loaded:
        converted = {k: v for k, v in converted.items() if not k.startswith("classifier.")}
    if getattr(model, "features_only", False):
        converted = {k: v for k, v in converted.items() if k in own}
    missing = [
        k for k in own if k not in converted and not (k.startswith("classifier.") and not classifier_loaded)
    ]
    if missing:
        raise WeightsMismatchError(f"weights from {label} do not cover {model.name}: missing {missing[:5]}")
    model.load_state_dict(converted, strict=False)
    return LoadReport(label, naming, classifier_loaded, classes)


def adapt_input_channels(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """RGB stem weights for another number of input channels: summed for grayscale, else the RGB filters
    repeated and rescaled so the layer's response to a gray image stays the same."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def load_run_weights(network: torch.nn.Module, weights_path: Path, config_path: Path) -> None:
    """Load a run's saved weights into ``network``, built from its config file, strictly.

    Raises FileNotFoundError for a missing file, and ValueError naming the file for a truncated or corrupt
    one or for weights of other shapes than the config describes.
    """
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"{weights_path}: missing; the run did not finish (continue it with --resume) or the file was "
            "removed"
        )
    state, _ = read_weights(weights_path)  # a truncated or corrupt file: WeightsFileError naming it
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(
            f"{weights_path}: does not fit {config_path} ({lines[-1] if lines else error}); the two files "
            "come from different runs or one was edited: restore both from one run or train again"
        ) from None
