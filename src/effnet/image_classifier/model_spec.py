"""Model Maker's `model_spec.get(name)`: which network to train, and with which pretrained weights."""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import InitVar, dataclass

from effnet.factory import create_model
from effnet.models import EfficientNet, ModelConfig, get_config
from effnet.weights.missing import PretrainedWeightsError, missing_weights_message

log = logging.getLogger(__name__)

# Model Maker's spec names -> effnet models
ALIASES = {"mobilenet_v2": "mobilenet_v2_100", "mobilenet_v3": "mobilenet_v3_large_100"}
SPEC_NAMES = "efficientnet_lite0..4 or mobilenet_v2 (Model Maker's names), or any of effnet.list_models()"


def hub_not_used(argument: str, uri: str | None = None) -> str:
    """The error for Model Maker's TF Hub arguments (``ModelSpec(uri=...)``, ``use_hub_library``): which
    model_spec name to pass instead (the one a Model Maker TF Hub uri names, when it names one)."""
    match = re.search(r"(efficientnet)[/_-]?(lite\d)|(mobilenet_v2)", uri or "")
    if match:
        name = f"efficientnet_{match[2]}" if match[1] else "mobilenet_v2"
        instead = f"model_spec={name!r}"
    else:
        instead = f"model_spec='efficientnet_lite0' ({SPEC_NAMES})"
    return f"{argument}: effnet does not use TF Hub; its networks are built by name: pass {instead}"


@dataclass(frozen=True)
class ModelSpec:
    """A network to train: an effnet model name (or custom `ModelConfig`) and an optional input size.

    Model Maker's ``ImageModelSpec(uri=...)`` named a TF Hub module: effnet does not use TF Hub, and a
    ``uri`` (or a URL as the name) is a ValueError that says which name to pass instead.
    """

    name: str = ""
    config: ModelConfig | None = None
    input_image_shape: tuple[int, int] | None = None
    pretrained: bool = True
    uri: InitVar[str | None] = None

    def __post_init__(self, uri: str | None) -> None:
        if uri is not None or "://" in self.name or self.name.startswith("tfhub.dev"):
            given = f"uri={uri!r}" if uri is not None else repr(self.name)
            raise ValueError(hub_not_used(f"ModelSpec({given})", uri or self.name))
        if not self.name:
            raise TypeError(
                f"ModelSpec needs a model name, e.g. ModelSpec('efficientnet_lite0'): {SPEC_NAMES}"
            )

    def create_network(
        self,
        num_classes: int,
        dropout_rate: float,
        drop_path_rate: float | None = None,
        train_whole_model: bool = False,
    ) -> EfficientNet:
        """The network, with pretrained weights unless ``pretrained=False``.

        Weights that cannot be had are a `PretrainedWeightsError`, never a silent random start: a frozen
        random backbone trains a head to chance-level accuracy. Training from scratch must be asked for
        (``pretrained=False`` with ``train_whole_model=True``), and then warns what accuracy to expect.
        """
        target = self.config or self.name
        kwargs = {"num_classes": num_classes, "drop_rate": dropout_rate, "drop_path_rate": drop_path_rate}
        if self.input_image_shape:
            kwargs["input_size"] = tuple(self.input_image_shape)
        if not self.pretrained:
            if not train_whole_model:
                raise PretrainedWeightsError(
                    f"{self.name}: pretrained=False with a frozen backbone (train_whole_model=False) trains "
                    "a classifier on random features, which stays at chance level; to train from scratch "
                    "pass train_whole_model=True (effnet train --from-scratch), else leave pretrained=True"
                )
            print(f"effnet: warning: {self.name}: {SCRATCH_EXPECTATION}", file=sys.stderr)
            return create_model(target, **kwargs)
        try:
            network = create_model(target, pretrained=True, **kwargs)
        except (FileNotFoundError, ValueError) as error:
            model = self.config.name if self.config is not None else self.name
            consequence = "a frozen backbone without them is random and its classifier stays at chance level"
            message = missing_weights_message(self.name, model, error, consequence, FROM_SCRATCH)
            raise PretrainedWeightsError(message) from None
        log.info("%s: starting from %s", self.name, network.weights_report)
        return network


FROM_SCRATCH = (
    "image_classifier.create(..., train_whole_model=True, pretrained=False) or effnet train --from-scratch"
)
# Measured (benchmarks/from_scratch.py, results/from_scratch-cpu-2core.md): Lite0 at 64 px on 400 digits
SCRATCH_EXPECTATION = (
    "training from scratch (random initialization, pretrained=False): expect much lower accuracy than "
    "from pretrained weights unless there are thousands of images per class and many epochs (measured: "
    "Lite0, 400 digits, 5 epochs: 10% from scratch, chance level, vs 98% pretrained, frozen backbone)"
)


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
