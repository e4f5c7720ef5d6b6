"""The PyTorch side of an export: the copy of the model that is exported, and its reference outputs."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from effnet.export.lowering import lower_for_int8
from effnet.preprocessing import Preprocessing

_REFERENCE_BATCH = 16


def export_copy(model: nn.Module, int8_engine: str | None = None) -> nn.Module:
    """A float32 CPU copy of ``model`` in eval mode: exporting never changes the caller's model (its device,
    dtype or train/eval mode). ``int8_engine`` ("onnx" or "tflite"): the copy is for an int8 file of that
    engine, and its activations are rewritten into forms the engine runs in int8
    (`effnet.export.lowering`)."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch.nn.Module built by effnet.create_model, got {type(model).__name__}"
        )
    if not isinstance(getattr(model, "preprocessing", None), Preprocessing):
        raise TypeError(
            f"{type(model).__name__} has no .preprocessing (effnet.preprocessing.Preprocessing): the export "
            "needs it for the input size and for the file's metadata; set model.preprocessing first"
        )
    if getattr(model, "features_only", False):
        raise ValueError(
            f"{getattr(model, 'name', 'the model')} was built with features_only=True (a list of feature "
            "maps); export a classifier, or num_classes=0 for pooled features"
        )
    network = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    return lower_for_int8(network, int8_engine) if int8_engine else network


def input_channels(model: nn.Module) -> int:
    return int(getattr(model, "in_chans", 3))


def random_inputs(preprocessing: Preprocessing, in_chans: int, count: int, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal inputs (N, C, H, W): the scale of normalized images."""
    shape = (count, in_chans, *preprocessing.input_size)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def reference_outputs(model: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """The PyTorch model's float32 outputs for ``inputs`` (N, C, H, W)."""
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), _REFERENCE_BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + _REFERENCE_BATCH]))
            outputs.append(model(batch).float().numpy())
    return np.concatenate(outputs)


def input_range(preprocessing: Preprocessing) -> tuple[float, float]:
    """The range a normalized image can span: (0 - mean) / std .. (1 - mean) / std over the channels.
    Quantizers are given this as the input's range, so no pixel is clipped, whatever the calibration
    images happened to contain."""
    mean, std = np.asarray(preprocessing.mean), np.asarray(preprocessing.std)
    return float(((0.0 - mean) / std).min()), float(((1.0 - mean) / std).max())
