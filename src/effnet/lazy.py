"""Package names that import their module on first use (PEP 562): importing a package for one of its light
modules (``effnet.export.quantization``, ``effnet.image_classifier.hparams``) does not import torch, and
``effnet --help`` starts in a fraction of a second."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``exports`` comes from the module it maps
    to (``"effnet.data.dataset:ImageDataset"`` where the module's name for it differs), imported on first
    use and then kept; any other name is tried as a submodule (``effnet.export.onnx``)."""

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":  # the submodule exists; something it needs does not
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module, _, attribute = target.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
