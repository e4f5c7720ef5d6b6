"""Pretrained weights: the published table, download and cache, conversion from other namings, loading."""

from effnet.weights.convert import WeightsMismatchError, convert_state_dict, detect_naming, unwrap_checkpoint
from effnet.weights.load import LoadReport, WeightsFileError, load_weights, read_weights
from effnet.weights.spec import WeightSpec

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
