"""Embeddings of images from a PyTorch embedding model or an exported file, with insightface's flip test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from effnet.data import EvalTransform, ImageDataset
from effnet.embedder.metrics import normalize

Forward = Callable[[np.ndarray], np.ndarray]


def forward_function(model: Any) -> tuple[Forward, Any]:
    """(batch -> embeddings, preprocessing) for an `Embedder`, an embedding `nn.Module`, a runtime
    `Predictor` or the path of an exported .onnx / .tflite file."""
    import os

    if isinstance(model, (str, os.PathLike)):
        from effnet.runtime import load as load_runtime

        model = load_runtime(model)
    network = getattr(model, "network", model)
    if hasattr(network, "predict_batch"):  # an effnet.runtime Predictor
        if network.preprocessing is None:
            raise ValueError(
                f"{network.path}: has no effnet metadata (preprocessing); re-export it with effnet"
            )
        return network.predict_batch, network.preprocessing
    import torch

    if not isinstance(network, torch.nn.Module) or not hasattr(network, "preprocessing"):
        raise TypeError(
            "model must be an Embedder, an embedding network from effnet.create_embedder, an effnet.runtime "
            f"Predictor or an exported .onnx/.tflite path, got {type(model).__name__}"
        )

    def forward(batch: np.ndarray) -> np.ndarray:
        network.eval()
        with torch.inference_mode():
            device = next(network.parameters()).device  # a network training on a GPU validates there
            images = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
            return network(images).float().cpu().numpy()

    return forward, network.preprocessing


def embed_paths(
    model: Any,
    paths: Sequence[str] | ImageDataset,
    flip: bool = True,
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings of every image, in order. ``flip``: add the embedding of the
    horizontally flipped image before normalising (insightface's "Accuracy-Flip"). An unreadable image is an
    error naming it: a verification pair cannot drop one of its images silently."""
    forward, preprocessing = forward_function(model)
    dataset = (
        paths
        if isinstance(paths, ImageDataset)
        else ImageDataset.from_samples(list(paths), [0] * len(paths), ["image"])
    )
    chunks = []
    batches = dataset.iter_batches(
        EvalTransform(preprocessing), batch_size, num_workers=num_workers, progress=progress
    )
    for images, _ in batches:
        embedding = forward(images).astype(np.float64)
        if flip:
            embedding = embedding + forward(np.ascontiguousarray(images[..., ::-1]))
        chunks.append(embedding)
    if dataset.skipped:
        names = ", ".join(s.path for s in dataset.skipped[:3])
        raise ValueError(
            f"{len(dataset.skipped)} image(s) could not be decoded ({names}); fix or remove them"
        )
    return normalize(np.concatenate(chunks)).astype(np.float32)
