"""Class names from a Model Maker ``label_map``: a dict ``{1: "cat", 2: "dog"}``, a list of names, or a label
map file (YAML, JSON, TF Object Detection ``.pbtxt``, or one name per line)."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

_LABEL_MAP_FORMS = "a dict {1: 'cat', 2: 'dog'}, a list of names, or the path of a label map file"


def resolve_label_map(label_map: Any) -> list[str]:
    """Class names in label order from a Model Maker ``label_map``: a dict ``{id: name}`` (ids from 1, in id
    order; ``0: 'background'`` is allowed and ignored), a list of names, or a file path (see
    `read_label_map_file`)."""
    if isinstance(label_map, Mapping):
        return _names_from_ids(dict(label_map), "label_map")
    if isinstance(label_map, (str, os.PathLike)):
        path = os.fspath(label_map)
        if os.path.isfile(path):
            return read_label_map_file(path)
        raise FileNotFoundError(f"label_map {path!r}: no such file; pass {_LABEL_MAP_FORMS}")
    if isinstance(label_map, Sequence) and label_map:
        return checked_names([str(name) for name in label_map], "label_map")
    raise TypeError(f"label_map must be {_LABEL_MAP_FORMS}; got {label_map!r}")


def read_label_map_file(path: str | os.PathLike) -> list[str]:
    """Class names from a label map file: ``.json`` (a dict ``{"1": "cat"}`` or a list), ``.yaml``/``.yml``
    (``1: cat`` lines, as Model Maker writes them), ``.pbtxt`` (TF Object Detection ``item { id: 1 name:
    'cat' }``), anything else one name per line."""
    path = os.fspath(path)
    with open(path, encoding="utf-8-sig") as file:
        text = file.read()
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno}); fix the file") from None
        if isinstance(data, dict):
            return _names_from_ids(data, path)
        if isinstance(data, list) and data:
            return checked_names([str(name) for name in data], path)
        raise ValueError(f'{path}: expected a JSON object {{"1": "cat"}} or a list of names')
    if suffix in (".yaml", ".yml"):
        pairs = re.findall(r"^\s*(\d+)\s*:\s*['\"]?(.*?)['\"]?\s*$", text, flags=re.MULTILINE)
        if not pairs:
            raise ValueError(f"{path}: no 'id: name' lines (e.g. '1: cat'); fix the file")
        return _names_from_ids(dict(pairs), path)
    if suffix == ".pbtxt":
        pairs = {}
        for item in re.findall(r"item\s*\{(.*?)\}", text, flags=re.DOTALL):
            found_id = re.search(r"\bid\s*:\s*(\d+)", item)
            found_name = re.search(r"\b(?:display_)?name\s*:\s*['\"]([^'\"]*)['\"]", item)
            if found_id and found_name:
                pairs[found_id.group(1)] = found_name.group(1)
        if not pairs:
            raise ValueError(f"{path}: no item {{ id: 1 name: 'cat' }} entries; fix the file")
        return _names_from_ids(pairs, path)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: empty label map; write one class name per line")
    return checked_names(names, path)


def _names_from_ids(mapping: dict, where: str) -> list[str]:
    by_id: dict[int, str] = {}
    for key, name in mapping.items():
        try:
            class_id = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: id {key!r} is not an integer; map ids 1, 2, ... to names") from None
        if class_id == 0 and str(name).lower() == "background":
            continue
        if class_id < 1:
            raise ValueError(
                f"{where}: id {class_id} ({name!r}); ids start at 1 (Model Maker reserves 0 for the "
                "background); number the classes from 1"
            )
        by_id[class_id] = str(name)
    return checked_names([by_id[class_id] for class_id in sorted(by_id)], where)


def checked_names(names: list[str], where: str) -> list[str]:
    """``names`` stripped; raises ValueError naming ``where`` when one is empty or two are the same."""
    names = [name.strip() for name in names]
    if not names or any(not name for name in names):
        raise ValueError(f"{where}: class names must be non-empty; got {names!r}")
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{where}: class names repeat ({repeated}); each class needs its own name")
    return names
