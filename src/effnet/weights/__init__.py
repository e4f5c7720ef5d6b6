"""Pretrained weights: the published table, download and cache, conversion from other namings, loading."""

from __future__ import annotations

from typing import TYPE_CHECKING

from effnet.lazy import lazy_exports

# names load on first use (effnet.lazy): importing one light module of this package imports no torch
_EXPORTS = {
    "WeightsMismatchError": "effnet.weights.convert",
    "convert_state_dict": "effnet.weights.convert",
    "detect_naming": "effnet.weights.convert",
    "unwrap_checkpoint": "effnet.weights.convert",
    "LoadReport": "effnet.weights.load",
    "WeightsFileError": "effnet.weights.load",
    "load_weights": "effnet.weights.load",
    "read_weights": "effnet.weights.load",
    "WeightSpec": "effnet.weights.spec",
}

__all__ = [
    "LoadReport",
    "WeightSpec",
    "WeightsFileError",
    "WeightsMismatchError",
    "convert_state_dict",
    "detect_naming",
    "load_weights",
    "read_weights",
    "unwrap_checkpoint",
]

if TYPE_CHECKING:
    from effnet.weights.convert import (
        WeightsMismatchError,
        convert_state_dict,
        detect_naming,
        unwrap_checkpoint,
    )
    from effnet.weights.load import LoadReport, WeightsFileError, load_weights, read_weights
    from effnet.weights.spec import WeightSpec

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
