"""Model Maker's `model_spec.get(name)`: which network to train, and with which pretrained weights."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from effnet.factory import create_model
from effnet.models import EfficientNet, ModelConfig, get_config

log = logging.getLogger(__name__)

# Model Maker's spec names -> effnet models
ALIASES = {"mobilenet_v2": "mobilenet_v2_100", "mobilenet_v3": "mobilenet_v3_large_100"}


@dataclass(frozen=True)
class ModelSpec:
    """A network to train: an effnet model name (or custom `ModelConfig`) and an optional input size."""

    name: str
    config: ModelConfig | None = None
    input_image_shape: tuple[int, int] | None = None
    pretrained: bool = True

    def create_network(
        self, num_classes: int, dropout_rate: float, drop_path_rate: float | None = None
    ) -> EfficientNet:
        """The network with pretrained weights where they can be had; otherwise random init, said out loud."""
        target = self.config or self.name
        kwargs = {"num_classes": num_classes, "drop_rate": dropout_rate, "drop_path_rate": drop_path_rate}
        if self.input_image_shape:
            kwargs["input_size"] = tuple(self.input_image_shape)
        if self.pretrained:
            try:
                network = create_model(target, pretrained=True, **kwargs)
                log.info("%s: starting from %s", self.name, network.weights_report)
                return network
            except (FileNotFoundError, ValueError) as error:
                message = str(error).splitlines()[0]
                log.warning(
                    "%s: no pretrained weights (%s); training from random initialization", self.name, message
                )
                print(
                    f"effnet: {self.name}: no pretrained weights available, training from random init "
                    f"({message})"
                )
        return create_model(target, **kwargs)


def get(spec: str | ModelSpec | ModelConfig) -> ModelSpec:
    """A `ModelSpec` by name: any effnet model (`effnet.list_models()`) or a Model Maker name."""
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, ModelConfig):
        return ModelSpec(spec.name, config=spec)
    name = ALIASES.get(str(spec), str(spec))
    if name in ("resnet_50", "resnet50"):
        raise ValueError(
            "resnet_50 is not part of effnet; use efficientnet_lite0..4, mobilenet_v2 or any effnet model"
        )
    return ModelSpec(get_config(name).name)
