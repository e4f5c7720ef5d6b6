"""PyTorch -> a Rockchip NPU ``.rknn`` file (int8, int16 or fp16) through rknn-toolkit2, checked in its
simulator.

    from effnet.export.rknn import export_rknn
    export_rknn(model, "model.rknn", quantization="int8", target="rk3588", representative_data=images)

The model goes to a float ONNX file first (`export_onnx`, checked against PyTorch), which rknn-toolkit2
converts in its own environment (`effnet.runtime.rknn_engine`). Quantization is the toolkit's own:

- ``int8``: ``w8a8`` (int8 weights and activations), every target.
- ``int16``: ``w16a16i_dfp`` (16-bit weights and activations, dynamic fixed point): the toolkit's 16-bit
  integer mode, which 2.5 builds for every target (its ``w8a16`` mode it refuses on all of them); the
  file is about twice the int8 size.
- ``fp16``: no quantization; the NPU computes in float16.

The file takes RGB pixels (0..255, NHWC) with the model's mean / std normalization inside it. Beside it
the export keeps ``model.rknn.sim/`` (the float ONNX file, calibration images, build settings): the
toolkit's simulator can only run a model it builds itself, so ``effnet evaluate model.rknn DATA`` rebuilds
from that folder. Only the .rknn file goes to the board.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from effnet.export.checks import (
    AGREEMENT_WARNING,
    COSINE_WARNING,
    ExportCheck,
    ExportedPath,
    check_export,
    export_data,
)
from effnet.export.files import destination, publish, staging_folder
from effnet.export.metadata import metadata_for
from effnet.export.quantization import DEFAULT_QUANTIZATION_STEPS, QuantizationConfig
from effnet.export.torch_model import export_copy
from effnet.runtime.rknn_engine import (
    BUILD_FILE,
    CALIBRATION_FILE,
    ONNX_FILE,
    RknnPredictor,
    build_job,
    rknn_python,
    simulation_folder,
    worker_command,
)

log = logging.getLogger("effnet.export")

# rknn-toolkit2 2.5's targets (RV1126 / RV1109 need the older rknn-toolkit v1: docs/rknn.md)
TARGETS = ("rk3588", "rk3576", "rk3568", "rk3566", "rk3562", "rv1103", "rv1106", "rv1126b")
QUANTIZATIONS = {"int8": "w8a8", "int16": "w16a16i_dfp", "fp16": None}  # effnet name -> toolkit dtype
ALGORITHMS = {"normal": "normal", "mmse": "mmse", "kl": "kl_divergence"}  # effnet name -> toolkit name
ANALYSIS_IMAGES = 2  # images the per-layer accuracy analysis runs on when a file falls short
_ANALYSIS_ROWS = 12  # layers of the analysis table shown: those whose error grew most
_CUSTOM_STRING_LIMIT = 1023  # the toolkit's limit for the string a .rknn file carries


def export_rknn(
    model: nn.Module,
    path: str | os.PathLike,
    quantization: str = "int8",
    target: str = "rk3588",
    representative_data: Any = None,
    algorithm: str = "normal",
    labels: Sequence[str] | None = None,
    quantization_steps: int = DEFAULT_QUANTIZATION_STEPS,
) -> ExportedPath:
    """Export ``model`` to ``path`` (a ``.rknn`` file for ``target``) and check it in the toolkit's simulator
    against PyTorch; returns the written path, whose ``.check`` says what the check measured.

    ``quantization``: "int8", "int16" or "fp16" (module docstring). ``representative_data`` (as in
    `QuantizationConfig`): the images int8 / int16 calibrate on (the first ``quantization_steps``) and are
    checked on (the rest, up to 64). ``algorithm``: the toolkit's activation-range algorithm, "normal"
    (min / max), "mmse" or "kl" (KL divergence); mmse is slow and often keeps most. When a quantized file
    falls short (top-1 agreement below 90%, or for an embedder mean cosine below 0.99), the toolkit's
    per-layer accuracy analysis is logged as a table.
    """
    if target not in TARGETS:
        hint = (
            " (RV1126 / RV1109 need rknn-toolkit v1: docs/rknn.md)" if target in ("rv1126", "rv1109") else ""
        )
        raise ValueError(f"target: unknown {target!r}{hint}; choose from {', '.join(TARGETS)}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization: unknown {quantization!r}; choose from {', '.join(QUANTIZATIONS)}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: unknown {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    rknn_python()  # a missing environment fails here, before any work
    file = destination(path, ".rknn")
    calibrated = QUANTIZATIONS[quantization] is not None
    if calibrated and representative_data is None:
        raise ValueError(
            f"{quantization} .rknn export calibrates on real images: pass representative_data (a few "
            "hundred training images), or quantization='fp16'"
        )
    network = export_copy(model)
    config = QuantizationConfig("int8", representative_data, quantization_steps) if calibrated else None
    data = export_data(network, config, representative_data)
    metadata = metadata_for(network, labels, "NHWC", quantization)
    from effnet.export.onnx import export_onnx

    with staging_folder(file) as work:
        folder = work / "simulation"
        folder.mkdir()
        export_onnx(network, folder / ONNX_FILE, labels=metadata.labels)
        mean = [255.0 * value for value in network.preprocessing.mean]
        std = [255.0 * value for value in network.preprocessing.std]
        pixels = np.zeros((0, 3, 1, 1), np.uint8)
        if data.calibration is not None:
            pixels = to_pixels(data.calibration, mean, std).round().clip(0, 255).astype(np.uint8)
        np.savez(folder / CALIBRATION_FILE, images=pixels)
        outputs = int(getattr(network, "num_classes", 0) or getattr(network, "num_features", 0) or 0)
        settings = {
            "build": {
                "target": target,
                "quantization": quantization,
                "dtype": QUANTIZATIONS[quantization],
                "algorithm": ALGORITHMS[algorithm],
                "mean": mean,
                "std": std,
                "custom_string": _custom_string(metadata.to_dict()),
            },
            "metadata": metadata.to_dict(),
            "outputs": outputs or _output_size(network),
        }
        (folder / BUILD_FILE).write_text(json.dumps(settings, indent=1))
        staged = work / file.name
        predictor = RknnPredictor(staged, folder, export=True)
        try:
            check = check_export(
                predictor, network, data, target=file, file_format="rknn", quantization=quantization
            )
        finally:
            predictor.close()
        if calibrated and _falls_short(check):
            table = analyze_layers(folder, data.check[:ANALYSIS_IMAGES], mean, std, work)
            log.warning("%s: per-layer accuracy in the simulator (worst first):\n%s", file, table)
        sim = simulation_folder(file)
        if sim.exists():
            shutil.rmtree(sim)
        os.replace(folder, sim)  # the simulation folder first: the .rknn file appears last, complete
        publish(staged, file)
    return ExportedPath.with_check(file, check)


def to_pixels(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalized NCHW images -> the 0..255 NCHW pixels they came from (``mean`` / ``std`` in pixels)."""
    shape = (1, -1, 1, 1)
    return images * np.asarray(std, np.float32).reshape(shape) + np.asarray(mean, np.float32).reshape(shape)


def _output_size(network: nn.Module) -> int:
    import torch

    size = network.preprocessing.input_size
    with torch.inference_mode():
        return int(network(torch.zeros(1, 3, *size)).shape[-1])


def _custom_string(metadata: dict) -> str:
    """What the .rknn file itself carries (the toolkit's custom string, readable on the board with
    ``rknn_query(RKNN_QUERY_CUSTOM_STRING)``): effnet's metadata, without the labels when they do not fit
    the toolkit's 1,023 characters (labels.txt then travels beside the file)."""
    text = json.dumps(metadata, separators=(",", ":"))
    if len(text) > _CUSTOM_STRING_LIMIT:
        text = json.dumps({**metadata, "labels": None}, separators=(",", ":"))
    return text[:_CUSTOM_STRING_LIMIT]


def _falls_short(check: ExportCheck) -> bool:
    if check.mean_cosine is not None:
        return check.mean_cosine < COSINE_WARNING
    return check.top1_agreement < AGREEMENT_WARNING


def analyze_layers(
    folder: Path, images: np.ndarray, mean: Sequence[float], std: Sequence[float], work: Path
) -> str:
    """The toolkit's per-layer accuracy analysis of the model of ``folder`` on ``images`` (normalized NCHW):
    each layer's cosine to float, accumulated ("entire") and of the layer alone ("single"), the layers whose
    single-layer cosine is lowest first, as a table."""
    import subprocess

    inputs = []
    for index, image in enumerate(to_pixels(images, mean, std)):
        name = work / f"analysis-{index}.npy"
        np.save(name, image[None].astype(np.float32))
        inputs.append(str(name))
    job = {**build_job(folder), "analysis_inputs": inputs, "analysis_dir": str(work / "analysis")}
    (work / "analysis.json").write_text(json.dumps(job))
    result = subprocess.run(
        worker_command("analyze", work / "analysis.json"),
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
        cwd=work,
    )
    report = work / "analysis" / "error_analysis.txt"
    if result.returncode != 0 or not report.is_file():
        return f"(the toolkit's accuracy analysis failed: {result.stderr.strip().splitlines()[-1:]})"
    return layer_table(report.read_text())


_ROW = re.compile(r"^\[(\w+)\]\s+(\S+)\s+([\d.]+)\s*\|\s*([\d.]+)\s+([\d.]+)\s*\|\s*([\d.]+)")


def layer_table(text: str, rows: int = _ANALYSIS_ROWS) -> str:
    """The toolkit's error_analysis.txt as a table of the ``rows`` layers with the lowest single-layer
    cosine (the layers that lose accuracy themselves, not by inheriting it)."""
    layers = []
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if match:
            kind, name, entire, _, single, _ = match.groups()
            layers.append((float(single), float(entire), kind, name))
    layers.sort()
    lines = [f"{'layer':48s} {'op':14s} {'cos (alone)':>11s} {'cos (so far)':>12s}"]
    lines += [
        f"{name[:48]:48s} {kind[:14]:14s} {single:11.5f} {entire:12.5f}"
        for single, entire, kind, name in layers[:rows]
    ]
    return "\n".join(lines)
