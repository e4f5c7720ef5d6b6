"""Looking up a registry by name: the shell-style filter of the ``list_*`` functions and the lookup with
"did you mean" suggestions of the ``get_*`` functions (models, detectors, segmenters)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


def matching(names: Iterable[str], pattern: str | None) -> list[str]:
    """``names`` that match a shell-style ``pattern`` (a pattern without wildcards matches names containing
    it); all of them when ``pattern`` is empty."""
    names = list(names)
    if not pattern:
        return names
    wanted = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
    return [name for name in names if fnmatch.fnmatch(name, wanted)]


def lookup(registry: Mapping[str, T], name: object, kind: str, lister: str, suggestions: int = 3) -> T:
    """``registry``'s entry for ``name`` (case, surrounding spaces and "-" vs "_" do not matter); a
    ValueError naming the closest names and ``lister`` (the call that lists them all) otherwise."""
    key = str(name).strip().lower().replace("-", "_")
    if key in registry:
        return registry[key]
    close = difflib.get_close_matches(key, list(registry), n=suggestions, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown {kind} {name!r}{hint} ({lister} lists all {len(registry)})")
