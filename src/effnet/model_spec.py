"""``from tflite_model_maker import model_spec`` -> ``from effnet import model_spec``."""

from effnet.image_classifier.model_spec import ALIASES, ModelSpec, get

__all__ = ["ALIASES", "ModelSpec", "get"]
