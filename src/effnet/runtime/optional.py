"""Importing optional engines (onnxruntime, ai-edge-litert, litert-torch), with a one-line fix if missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, *, needed_for: str, package: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError saying what needs it and which effnet extra installs it,
    e.g. ``.tflite export needs litert-torch: pip install "effnet[litert]"``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        # Only a missing top-level package gets the short message; a package that is installed but fails to
        # import (a broken build, a missing shared library) keeps its own error, which says why.
        if error.name is not None and error.name.split(".")[0] != module.split(".")[0]:
            raise
        raise ImportError(f'{needed_for} needs {package}: pip install "effnet[{extra}]"') from None
