"""Every export checks the file it wrote before reporting success, by running it with the runtime that users
will run it with (`effnet.runtime`) and comparing with the PyTorch model.

- A float file must match PyTorch: max |difference| of the outputs within `FLOAT_TOLERANCE` (relative to the
  largest output, at least 1), or the export fails and writes nothing.
- A quantized file reports its top-1 agreement with PyTorch on held-out representative images (images past
  ``quantization_steps``, not used for calibration) when there are any, else on calibration images.
  Below `AGREEMENT_WARNING` it logs a warning; it does not fail: how much loss is acceptable is the user's
  call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from effnet.export.quantization import QuantizationConfig
from effnet.export.representative import representative_arrays
from effnet.export.torch_model import input_channels, random_inputs, reference_outputs
from effnet.runtime.predictor import Predictor

log = logging.getLogger("effnet.export")

FLOAT_TOLERANCE = 1e-3
AGREEMENT_WARNING = 0.9
COSINE_WARNING = 0.99
# A head BatchNorm channel whose gain |weight| / sqrt(running_var + eps) exceeds this multiplies the int8
# rounding errors of its input by as much on images unlike the training ones (README, "int8 and int16
# embeddings": on a 12-epoch digits embedder, 173 such channels of the gdc head and an int8 cosine of 0.980).
AMPLIFYING_GAIN = 50.0
CHECK_IMAGES = 64  # held-out images a quantized file is checked on
_FLOAT_CHECK_INPUTS = 4  # representative images a float file is compared on
_RANDOM_CHECK_INPUTS = 8
_CLOSER_MODES = {  # what keeps embeddings closer to float when a quantized file misses COSINE_WARNING
    "int8": "int16 activations keep more, on NPUs that run them: quantization='int16'; fp16 keeps nearly all",
    "int16": "fp16 keeps nearly all",
}
_FINETUNING_HINT = "quantization-aware fine-tuning can keep more: QuantizationConfig(finetune_steps=300); "
_ROUNDING_HINT = (
    "GPTQ weight rounding (QuantizationConfig(weight_rounding='gptq'), no training) or quantization-aware "
    "fine-tuning (finetune_steps=300) can keep more; "
)


@dataclass(frozen=True)
class ExportCheck:
    """What an exported file's self-check measured against the PyTorch model.

    ``inputs`` says what it ran on: "held-out images" (representative images not used for calibration),
    "calibration images", "representative images" or "random inputs".
    """

    format: str
    quantization: str
    inputs: str
    num_inputs: int
    max_abs_diff: float
    top1_agreement: float
    file_bytes: int
    mean_cosine: float | None = None  # embedding models (num_classes == 0): mean cosine similarity to PyTorch

    def __str__(self) -> str:
        if self.mean_cosine is not None:
            return (
                f"{self.format} ({self.quantization}): mean cosine similarity to PyTorch "
                f"{self.mean_cosine:.4f} "
                f"on {self.num_inputs} {self.inputs}, max |output diff| {self.max_abs_diff:.3g}, "
                f"{self.file_bytes / 1e6:.2f} MB"
            )
        return (
            f"{self.format} ({self.quantization}): top-1 agreement with PyTorch {self.top1_agreement:.3f} on "
            f"{self.num_inputs} {self.inputs}, max |output diff| {self.max_abs_diff:.3g}, "
            f"{self.file_bytes / 1e6:.2f} MB"
        )


class ExportCheckError(RuntimeError):
    """The exported file does not compute what the PyTorch model computes; nothing was written."""


class ExportedPath(type(Path())):  # type: ignore[misc]  # Path() is PosixPath or WindowsPath
    """The path of an exported file (a `pathlib.Path`) with ``check``: the `ExportCheck` it passed."""

    check: ExportCheck | None = None

    @classmethod
    def with_check(cls, path: Path, check: ExportCheck) -> ExportedPath:
        result = cls(path)
        result.check = check
        return result


@dataclass(frozen=True)
class ExportData:
    """The images an export calibrates on and checks with."""

    calibration: np.ndarray | None
    check: np.ndarray
    description: str


def export_data(model: nn.Module, config: QuantizationConfig | None, representative_data: Any) -> ExportData:
    """Split the representative images into calibration and check images (see the module docstring)."""
    preprocessing, channels = model.preprocessing, input_channels(model)
    if config is not None and config.calibrated:
        steps = config.quantization_steps
        arrays = representative_arrays(
            config.representative_data, preprocessing, steps + CHECK_IMAGES, channels
        )
        calibration, held_out = arrays[:steps], arrays[steps:]
        if len(held_out):
            return ExportData(calibration, held_out, "held-out images")
        return ExportData(calibration, calibration[:CHECK_IMAGES], "calibration images")
    data = config.representative_data if config is not None else None
    data = representative_data if data is None else data
    if data is not None:
        limit = CHECK_IMAGES if config is not None else _FLOAT_CHECK_INPUTS
        return ExportData(
            None, representative_arrays(data, preprocessing, limit, channels), "representative images"
        )
    # Without images, a few random inputs show that the file runs and roughly matches; agreement on noise
    # says little about accuracy, so no more are spent on it.
    return ExportData(None, random_inputs(preprocessing, channels, _RANDOM_CHECK_INPUTS), "random inputs")


def check_export(
    predictor: Predictor,
    model: nn.Module,
    data: ExportData,
    *,
    target: Path,
    file_format: str,
    quantization: str,
    finetuned: bool = False,
    gptq: bool = False,
) -> ExportCheck:
    """Run the staged file on ``data.check`` and compare with the PyTorch model; raise `ExportCheckError`
    for a float file that does not match. ``finetuned``: the file was quantized from a quantization-aware
    fine-tuned copy of ``model``, ``gptq``: from a copy with GPTQ-rounded weights (the warning then does not
    suggest what was done)."""
    reference = reference_outputs(model, data.check)
    outputs = predictor.predict_batch(data.check)
    if outputs.shape != reference.shape:
        raise ExportCheckError(
            f"{target}: the exported file outputs shape {outputs.shape}, PyTorch {reference.shape}; "
            "nothing was written"
        )
    max_abs_diff = float(np.abs(outputs - reference).max())
    agreement = float((outputs.argmax(axis=-1) == reference.argmax(axis=-1)).mean())
    # an embedding (features) model has no classes: its agreement is the cosine similarity of the vectors
    mean_cosine = _mean_cosine(outputs, reference) if getattr(model, "num_classes", 1) == 0 else None
    check = ExportCheck(
        format=file_format,
        quantization=quantization,
        inputs=data.description,
        num_inputs=len(data.check),
        max_abs_diff=max_abs_diff,
        top1_agreement=agreement,
        file_bytes=Path(predictor.path).stat().st_size,
        mean_cosine=mean_cosine,
    )
    if quantization == "none":
        tolerance = FLOAT_TOLERANCE * max(1.0, float(np.abs(reference).max()))
        if not max_abs_diff <= tolerance:  # also catches NaN
            raise ExportCheckError(
                f"{target}: the exported file's outputs differ from PyTorch by up to {max_abs_diff:.3g} "
                f"(tolerance {tolerance:.3g}) on {len(data.check)} {data.description}; nothing was written. "
                "This is a bug in the exporter for this model: please report it"
            )
    elif mean_cosine is not None:
        if mean_cosine < COSINE_WARNING:
            log.warning(
                "%s: the %s file's outputs have mean cosine similarity %.4f to PyTorch on %d %s; check its "
                "verification accuracy before deploying it%s%s",
                target,
                quantization,
                mean_cosine,
                len(data.check),
                data.description,
                _closer(quantization, finetuned, gptq),
                _amplification_note(model),
            )
    elif agreement < AGREEMENT_WARNING:
        log.warning(
            "%s: the %s file agrees with PyTorch on only %.1f%% of %d %s (top-1); check its accuracy with "
            "effnet.runtime.load(path).evaluate(data) before deploying it",
            target,
            quantization,
            100 * agreement,
            len(data.check),
            data.description,
        )
    log.info("%s: %s", target, check)
    return check


def _closer(quantization: str, finetuned: bool, gptq: bool = False) -> str:
    """What would keep a quantized embedding model closer to float, as a parenthesis ('' if nothing): for
    int8 and int16 files, GPTQ weight rounding and quantization-aware fine-tuning (unless the file had one)
    and the next wider mode."""
    hint = _CLOSER_MODES.get(quantization)
    if hint and not finetuned:  # int8 and int16 (README, "int8 and int16 embeddings")
        hint = (_FINETUNING_HINT if gptq else _ROUNDING_HINT) + hint
    return f" ({hint})" if hint else ""


def amplifying_channels(model: nn.Module) -> tuple[int, int, float]:
    """How many channels of the BatchNorms in ``model.head`` (an embedding head: gdc, flatten) have a gain
    above `AMPLIFYING_GAIN`, of how many, and the largest gain (0.0 without such BatchNorms).

    These are channels the training images hardly vary: their running variance decays towards 0 as training
    goes on (by the momentum every step), and the gain towards |weight| / sqrt(eps), 316 for eps 1e-5. On
    other images (unseen identities) they do vary, and every small error of theirs, an int8 rounding above
    all, comes out multiplied by that gain."""
    head = getattr(model, "head", None)
    modules = head.modules() if isinstance(head, nn.Module) else []
    norms = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    gains = [
        (m.weight.detach().abs() / (m.running_var + m.eps).sqrt()).cpu().numpy()
        for m in norms
        if m.running_var is not None and m.weight is not None
    ]
    if not gains:
        return 0, 0, 0.0
    values = np.concatenate(gains)
    return int((values > AMPLIFYING_GAIN).sum()), len(values), float(values.max())


def _amplification_note(model: nn.Module) -> str:
    """A sentence for the low-cosine warning when the model's head amplifies near-constant channels."""
    count, channels, largest = amplifying_channels(model)
    if not count:
        return ""
    return (
        f"; {count} of the {channels} channels of its head's BatchNorm multiply by more than "
        f"{AMPLIFYING_GAIN:.0f} (up to {largest:.0f}): channels the training images hardly vary, whose "
        "rounding errors grow by as much on other images; the gap head has no such BatchNorm"
    )


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(((a * b).sum(axis=1) / norms).mean())


def check_and_publish(
    predictor: Predictor,
    staged: Path,
    model: nn.Module,
    data: ExportData,
    target: Path,
    file_format: str,
    config: QuantizationConfig | None,
    portable: bool = False,
    checker: Callable[..., Any] | None = None,
) -> ExportedPath:
    """The last step of every export: `check_export` the staged file (run by ``predictor``) against
    ``model``, then move it to ``target``; the returned path carries the check. ``checker``: another check
    with `check_export`'s signature (a detector's compares detections, `effnet.export.detection`)."""
    from effnet.export.files import publish

    check = (checker or check_export)(
        predictor,
        model,
        data,
        target=target,
        file_format=file_format,
        quantization=config.mode if config is not None else "none",
        finetuned=bool(config and config.finetune_steps),
        gptq=bool(config and config.rounding_for(portable) == "gptq"),
    )
    publish(staged, target)
    return ExportedPath.with_check(target, check)
