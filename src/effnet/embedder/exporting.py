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

FORMATS = ("onnx", "tflite")
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
) -> dict:
    """Export ``network`` to ``export_dir/<filename>.onnx`` / ``.tflite``; returns ``{format: {...}}`` with
    ``path``, ``bytes``, ``check`` (the export's own check: mean cosine to PyTorch on held-out
    representative images) and, with ``validation_data`` (images of identities not trained on):
    ``mean_cosine`` (file vs PyTorch on up to 200 of them) and ``verification`` (the file's accuracy,
    TAR@FAR ... on pairs sampled from them, with the flip test).

    int8 files are ONNX Runtime static QDQ (uint8 activations, int8 per-channel weights) / LiteRT
    full-integer with float32 input and output, calibrated on ``representative_data``; int16 files the same
    with 16-bit activations (for NPUs: gdc and flatten heads lose less there than in int8, see
    benchmarks/quantized_embeddings.py). Asked for by name ("int8", "int16"), the weights are rounded by GPTQ
    on ``representative_data`` (`WEIGHT_ROUNDING`); pass ``QuantizationConfig(mode, data)`` for nearest
    rounding.
    """
    from effnet.export import QuantizationConfig, export_onnx, export_tflite

    formats = [export_format] if isinstance(export_format, str) else list(export_format)
    for name in formats:
        if name not in FORMATS:
            raise ValueError(f"unknown export_format {name!r}; choose from {FORMATS}")
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
    reference, exported = torch_forward(images), predictor.predict_batch(images)
    cosine = (reference * exported).sum(1) / np.maximum(
        np.linalg.norm(reference, axis=1) * np.linalg.norm(exported, axis=1), 1e-12
    )
    verification = evaluate_verification(predictor, data, seed=seed)
    return {
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
        "verification": {k: v for k, v in verification.items() if not k.startswith("num_")},
    }
