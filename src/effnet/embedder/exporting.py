"""Exporting an embedding model with the shared export machinery (`effnet.export`), and measuring what
quantization did to its embeddings: mean cosine similarity to the float model, and verification accuracy of
the exported file itself."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from effnet.data import ImageDataset
from effnet.models.embedding import EmbeddingNet

if TYPE_CHECKING:
    from effnet.export.quantization import QuantizationConfig

FORMATS = ("onnx", "tflite", "rknn")
AGREEMENT_IMAGES = 200  # held-out images the float-vs-file cosine similarity is measured on
# int8 / int16 by name round the weights by GPTQ: on trained Lite embedders (README, "int8 and int16
# embeddings") it is what keeps gdc / flatten at >= 0.99 cosine in int8 (Lite0 gdc 0.981 -> 0.991), for about
# 20 s of rounding; a QuantizationConfig keeps its own weight_rounding
WEIGHT_ROUNDING = "gptq"


def export_embedder(
    network: EmbeddingNet,
    export_dir: str | os.PathLike,
    export_format: str | list[str] = "onnx",
    quantization: QuantizationConfig | str | None = None,
    representative_data: Any = None,
    validation_data: ImageDataset | None = None,
    filename: str = "model",
    target: str = "rk3588",
    rknn_algorithm: str = "normal",
) -> dict:
    """Export ``network`` to ``export_dir/<filename>.onnx`` / ``.tflite`` / ``.rknn``; returns
    ``{format: {...}}`` with ``path``, ``bytes``, ``check`` (the export's own check: mean cosine to PyTorch
    on held-out representative images) and, with ``validation_data`` (images of identities not trained on):
    ``mean_cosine`` (file vs PyTorch on up to 200 of them) and ``verification`` (the file's accuracy,
    TAR@FAR ... on pairs sampled from them, with the flip test).

    int8 files are ONNX Runtime static QDQ (uint8 activations, int8 per-channel weights) / LiteRT
    full-integer with float32 input and output, calibrated on ``representative_data``; int16 files the same
    with 16-bit activations (for NPUs: gdc and flatten heads lose less there than in int8, see
    benchmarks/quantized_embeddings.py). Asked for by name ("int8", "int16"), the weights are rounded by GPTQ
    on ``representative_data`` (`WEIGHT_ROUNDING`); pass ``QuantizationConfig(mode, data)`` for nearest
    rounding. ``rknn`` files (Rockchip NPU ``target``, `effnet.export.rknn`) are quantized by rknn-toolkit2
    itself (int8: w8a8, int16: w16a16i_dfp, None / fp16: float16; ``rknn_algorithm``: normal, mmse or kl)
    and measured in its simulator.
    """
    from effnet.export import QuantizationConfig, export_onnx, export_tflite

    formats = [export_format] if isinstance(export_format, str) else list(export_format)
    for name in formats:
        if name not in FORMATS:
            raise ValueError(f"unknown export_format {name!r}; choose from {FORMATS}")
    rknn_mode, rknn_data, rknn_steps = _rknn_settings(quantization, representative_data)
    if isinstance(quantization, str):  # by name (any alias): calibrated modes get GPTQ rounding
        config = QuantizationConfig.from_name(quantization, representative_data)
        if config is not None and config.calibrated:
            if representative_data is None:
                raise ValueError(
                    f"{quantization} export calibrates on real images: pass "
                    "representative_data=DataLoader.from_folder(...) (a few hundred training images); a "
                    "loaded model does not keep its training data"
                )
            config = replace(config, weight_rounding=WEIGHT_ROUNDING)
        quantization = config
    folder = Path(export_dir)
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in formats:
        path = folder / f"{filename}.{name}"
        if name == "rknn":
            from effnet.export.rknn import export_rknn

            written = export_rknn(
                network,
                path,
                rknn_mode,
                target,
                rknn_data,
                rknn_algorithm,
                quantization_steps=rknn_steps,
            )
        else:
            export = export_onnx if name == "onnx" else export_tflite
            written = export(network, path, quantization, representative_data=representative_data)
        entry: dict[str, Any] = {
            "path": str(written),
            "bytes": written.stat().st_size,
            "check": str(written.check),
        }
        if validation_data is not None:
            entry.update(measure_file(network, written, validation_data))
        results[name] = entry
    return results


def _rknn_settings(
    quantization: QuantizationConfig | str | None, representative_data: Any
) -> tuple[str, Any, int]:
    """(mode, calibration images, how many calibrate) of a .rknn file: None is fp16 (the NPU has no
    float32); a `QuantizationConfig` brings its own images and ``quantization_steps``."""
    from effnet.export import QuantizationConfig
    from effnet.export.quantization import DEFAULT_QUANTIZATION_STEPS

    if isinstance(quantization, str):
        quantization = QuantizationConfig.from_name(quantization, None)
    if quantization is None:
        return "fp16", representative_data, DEFAULT_QUANTIZATION_STEPS
    data = quantization.representative_data
    data = representative_data if data is None else data
    return quantization.mode, data, quantization.quantization_steps


def measure_exported(predictor: Any, data: ImageDataset, seed: int = 0) -> dict:
    """What `effnet evaluate FILE DATA` reports for an exported embedder without its PyTorch model: the
    file's verification metrics on pairs sampled from ``data`` and, for a .rknn file, the mean / min cosine
    of its embeddings to the float ONNX file it was built from (kept beside it; the export checked that
    one against PyTorch) on up to `AGREEMENT_IMAGES` images."""
    from effnet.data import EvalTransform
    from effnet.embedder.model import evaluate_verification

    result: dict[str, Any] = {}
    folder = getattr(predictor, "folder", None)
    if folder is not None:
        from effnet.runtime.onnx_engine import OnnxPredictor
        from effnet.runtime.rknn_engine import ONNX_FILE

        subset = data.shuffled(seed)
        subset = ImageDataset.from_samples(
            subset.paths[:AGREEMENT_IMAGES], subset.labels[:AGREEMENT_IMAGES], subset.index_to_label
        )
        images, _ = subset.load_arrays(EvalTransform(predictor.preprocessing), progress=False)
        reference = OnnxPredictor(folder / ONNX_FILE).predict_batch(images)
        cosine = _cosines(reference, predictor.predict_batch(images))
        result.update(mean_cosine=float(cosine.mean()), min_cosine=float(cosine.min()))
    verification = evaluate_verification(predictor, data, seed=seed)
    result["verification"] = {k: v for k, v in verification.items() if not k.startswith("num_")}
    result["num_images"] = len(data)
    return result


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def measure_file(network: EmbeddingNet, path: str | os.PathLike, data: ImageDataset, seed: int = 0) -> dict:
    """Mean / min cosine similarity of the file's embeddings to PyTorch's on up to `AGREEMENT_IMAGES` images
    of ``data``, and the file's verification metrics on pairs sampled from ``data``."""
    from effnet.data import EvalTransform
    from effnet.embedder.embedding import forward_function
    from effnet.embedder.model import evaluate_verification
    from effnet.runtime import load as load_runtime

    predictor = load_runtime(path)
    subset = data.shuffled(seed)
    subset = ImageDataset.from_samples(
        subset.paths[:AGREEMENT_IMAGES], subset.labels[:AGREEMENT_IMAGES], subset.index_to_label
    )
    images, _ = subset.load_arrays(EvalTransform(network.preprocessing), progress=False)
    torch_forward, _ = forward_function(network)
    cosine = _cosines(torch_forward(images), predictor.predict_batch(images))
    verification = evaluate_verification(predictor, data, seed=seed)
    return {
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
        "verification": {k: v for k, v in verification.items() if not k.startswith("num_")},
    }
