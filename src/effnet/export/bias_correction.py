"""Per-layer bias correction for int8 files: remove the systematic shift that quantization adds to each
layer's output, layer by layer, inside the quantized file.

Rounding errors are not always random. On images with large flat regions (a digit's black background, a
sky) every pixel of a region rounds the same way, and weight rounding shifts every output of a channel by
the same amount, so each quantized layer adds a fixed per-channel offset to its output. Offsets born in the
early, high-resolution layers then travel through every ReLU6 after them, which a correction at the output
cannot undo: excluding the first 12 of Lite0's 94 operations from quantization cut the int8 logits' error
by two thirds, excluding the last 12 changed nothing.

So the correction starts at the input: for each layer with a bias (convolutions, the classifier), in
order, run the quantized file (every earlier layer already corrected) and the float model on the
calibration images, and add the difference of their per-channel mean outputs to that layer's integer bias
(the empirical bias correction of Nagel et al., "Data-Free Quantization", 2019). Each file format adapts it
in its own exporter: `effnet.export.onnx.OnnxBiasLayers`, `effnet.export.tflite.TFLiteBiasLayers`.
The float model is always the caller's: after GPTQ weight rounding (`effnet.export.rounding`) the file is
quantized from a copy whose weights already lie on the int8 grid, and correcting towards that copy would
leave the rounding's own shift in place (a trained Lite0 + gdc embedder, held-out photos: 0.9815 cosine
to float that way, 0.9906 corrected towards the original, 0.9862 with nearest rounding).

Measured on the Lite0 that `make demo` trains on the digits folder (frozen backbone, 500 calibration
images, 128 of them used here, evaluated on the 1,297 other images): int8 top-1 agreement with float
97.3% -> 99.9% for ONNX Runtime and LiteRT, accuracy 96.8% -> 99.0% / 99.1% (float 98.9%), logit RMSE
0.62 -> 0.20 / 0.17; the earlier output-only correction reached 98.7%. It costs one run over the correction
images per layer, of the file cut after that layer (25-45 s for Lite0 at 224 on 2 cores when every run
went through the whole file)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

log = logging.getLogger("effnet.export")

MIN_IMAGES = 16  # fewer images than this give a mean shift noisier than the shift
SIGNIFICANCE = 3.0  # a channel's shift is corrected when it exceeds this many standard errors
CORRECTION_IMAGES = 128  # per-channel means over 128 images x every pixel: more changes nothing measurable


class BiasLayers(Protocol):
    """The biased layers of one quantized file, in execution order, as a file format exposes them."""

    def names(self) -> list[str]:
        """One name per correctable layer, in execution order."""
        ...

    def float_means(self, images: np.ndarray) -> list[np.ndarray]:
        """Every layer's per-image, per-channel mean output (images x channels) in the float model."""
        ...

    def quantized_mean(self, index: int, images: np.ndarray) -> np.ndarray:
        """Layer ``index``'s per-image, per-channel mean output in the quantized file as it is now."""
        ...

    def shift_bias(self, index: int, shift: np.ndarray) -> None:
        """Add ``shift`` (float, per output channel) to layer ``index``'s bias, rounded to its grid."""
        ...


@dataclass(frozen=True)
class BiasCorrection:
    """What `correct_biases` did: layers corrected, images used, largest and mean |shift| removed, and the
    fraction of channels whose shift was significant enough to correct."""

    layers: int
    images: int
    largest_shift: float
    mean_shift: float
    channels_corrected: float

    def __str__(self) -> str:
        return (
            f"bias correction: {self.layers} layers on {self.images} calibration images, mean output "
            f"shift up to {self.largest_shift:.3g} (mean |shift| {self.mean_shift:.3g}) removed in "
            f"{self.channels_corrected:.0%} of the channels"
        )


def correct_biases(
    layers: BiasLayers, calibration: np.ndarray | None, max_images: int = CORRECTION_IMAGES
) -> BiasCorrection | None:
    """Correct every layer of ``layers`` in order (see the module docstring) on up to ``max_images``
    calibration images; None when skipped (no biased layers, or fewer than `MIN_IMAGES` calibration
    images)."""
    names = layers.names()
    if not names:
        log.info("bias correction skipped: no biased layers in the quantized file")
        return None
    if calibration is None or len(calibration) < MIN_IMAGES:
        log.info("bias correction skipped: fewer than %d calibration images", MIN_IMAGES)
        return None
    images = calibration[: max(max_images, MIN_IMAGES)]
    reference = layers.float_means(images)
    shifts, kept = [], 0
    for index in tqdm(range(len(names)), desc="bias correction", unit="layer", leave=False):
        shift = significant_shift(reference[index] - layers.quantized_mean(index, images))
        layers.shift_bias(index, shift)
        shifts.append(np.abs(shift))
        kept += int(np.count_nonzero(shift))
    every = np.concatenate(shifts)
    result = BiasCorrection(
        len(names), len(images), float(every.max()), float(every.mean()), kept / max(len(every), 1)
    )
    log.info("%s", result)
    return result


def significant_shift(differences: np.ndarray) -> np.ndarray:
    """The mean of per-image differences (images x channels) for the channels where it stands out from
    the noise (more than `SIGNIFICANCE` standard errors), zero elsewhere. A convolution's per-image means
    average thousands of pixels and nearly every shift is kept; a classifier's logits are one number per
    image, and with few calibration images their mean difference is mostly noise: "correcting" it moved
    unrelated ImageNet classes into the top 2 of a Lite0 calibrated on 16 crops."""
    mean = differences.mean(axis=0)
    if len(differences) < 2:
        return np.zeros_like(mean)
    error = differences.std(axis=0, ddof=1) / np.sqrt(len(differences))
    return np.where(np.abs(mean) > SIGNIFICANCE * error, mean, 0.0)


def channel_means(outputs: np.ndarray, channel_axis: int) -> np.ndarray:
    """Per-image, per-channel means: an (images, channels) array from outputs whose first axis is the
    image and ``channel_axis`` the channel (the mean runs over the pixels)."""
    outputs = outputs.astype(np.float64)
    channel_axis %= outputs.ndim
    axes = tuple(axis for axis in range(1, outputs.ndim) if axis != channel_axis)
    means = outputs.mean(axis=axes) if axes else outputs
    return means.reshape(len(outputs), -1)
