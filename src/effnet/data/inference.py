"""Class probabilities of a list of images from a torch model, batch by batch: what `effnet.predict` and
`ImageClassifier.predict_top_k` run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from effnet.data.decoding import DecodedBatch, decode_batches
from effnet.data.images import ImageSource
from effnet.data.transforms import transforms_for


def probability_batches(
    model: nn.Module,
    images: Sequence[ImageSource],
    batch_size: int = 32,
    num_threads: int | None = None,
) -> Iterator[tuple[DecodedBatch, torch.Tensor | None]]:
    """Class probabilities (float32, one row per decoded image) of ``images``, batch by batch, with the
    `DecodedBatch` they came from (its ``failures``: the images that could not be decoded).

    As fast per image as training's feature extraction: decoding in ``num_threads`` threads (None: one
    per CPU) a batch ahead of the model, one model call per batch under ``torch.inference_mode``, and the
    model and its inputs in channels_last memory format (faster convolutions on CPU; the model is converted
    in place, which changes no result).
    """
    transform = transforms_for(model)
    model.eval()
    param = next(model.parameters())
    model.to(memory_format=torch.channels_last)
    for batch in decode_batches(images, transform, batch_size, num_threads):
        if batch.images is None:
            yield batch, None
            continue
        x = torch.from_numpy(batch.images).to(param.device, param.dtype)
        with torch.inference_mode():
            logits = model(x.contiguous(memory_format=torch.channels_last))
        yield batch, logits.float().softmax(dim=1).cpu()
