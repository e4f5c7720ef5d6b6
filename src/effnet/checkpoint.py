"""Run files. Atomic writes: a file is either the old version or the complete new one, never half-written.
Reads: a damaged file (truncated, corrupt, inconsistent with the others) is a ValueError naming it and the
fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from effnet.quiet import strip_ansi

log = logging.getLogger(__name__)


def new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file: 0o666 less the process umask."""
    umask = os.umask(0o077)  # os.umask sets the mask and returns the old one: there is no read-only call
    os.umask(umask)
    return 0o666 & ~umask


# Names of effnet's temporaries: `.NAME.XXXXXXXX.tmp` files (atomic_path, report files) and
# `.NAME.XXXXXXXX.partial` work folders (export), XXXXXXXX from tempfile (or 8 hex digits).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.(tmp|partial)$")
# A temporary untouched this long belongs to a process that died (kill -9, power loss): a live write keeps
# writing to its file, and an export to its work folder, far more often.
STALE_AFTER_SECONDS = 3600.0
_swept: set[Path] = set()


def remove_stale_temporaries(folder: str | os.PathLike, once: bool = False) -> list[Path]:
    """Remove effnet's own temporaries in ``folder`` (not below it) untouched for `STALE_AFTER_SECONDS`.

    ``once``: only on the first call for this folder in this process. Returns what was removed.
    """
    folder = Path(folder)
    if once and folder.resolve() in _swept:
        return []
    _swept.add(folder.resolve())
    removed: list[Path] = []
    now = time.time()
    try:
        entries = [entry for entry in os.scandir(folder) if _TEMPORARY.match(entry.name)]
    except OSError:
        return removed
    for entry in entries:
        try:
            is_folder = entry.is_dir(follow_symlinks=False)
            if entry.name.endswith(".partial") != is_folder:
                continue
            times = [entry.stat(follow_symlinks=False).st_mtime]
            if is_folder:
                times += [inner.stat(follow_symlinks=False).st_mtime for inner in os.scandir(entry.path)]
            if now - max(times) < STALE_AFTER_SECONDS:
                continue
            if is_folder:
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # removed meanwhile, or not ours to remove: leave it
            continue
    if removed:
        log.info("%s: removed %d stale temporaries of interrupted writes", folder, len(removed))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed.

    The file gets the mode a plain ``open()`` would give it (tempfile.mkstemp creates it owner-only). The
    first write to a folder also removes the stale temporaries of writes killed there before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, once=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, new_file_mode())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike, fix: str) -> Any:
    """What `save_torch` wrote to ``path``. A file that cannot be read (truncated, corrupt, not a checkpoint)
    raises ValueError naming it, the reason and ``fix``."""
    try:
        # weights_only: a checkpoint is data; a crafted one must not run code (pickle's __reduce__)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, a truncated zip, a file that is no checkpoint ...
        reason = " ".join(strip_ansi(str(error)).split(".")[0].split())[:200]
        raise ValueError(
            f"{path}: not a checkpoint effnet can read ({type(error).__name__}: {reason}); {fix}"
        ) from None


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """``data`` as strict JSON: NaN and infinities (a diverged loss) become null, which every parser reads."""
    write_text(path, json.dumps(finite_or_null(data), indent=2, allow_nan=False) + "\n")


def finite_or_null(data: Any) -> Any:
    """``data`` with every non-finite float, at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite_or_null(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_null(value) for value in data]
    return data


def read_json(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; ValueError naming the file when it is not valid JSON or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); restore the file or train again") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a JSON {type(data).__name__}, expected an object; restore the file")
    return data


def invalid_config(config_path: str | os.PathLike, error: Exception) -> ValueError:
    """The error for a run's config file whose fields are missing or wrong (``error``: what building the
    model from it raised)."""
    reason = f"no {error}" if isinstance(error, KeyError) else (str(error).splitlines() or [repr(error)])[0]
    return ValueError(
        f"{config_path}: not a valid effnet run config ({reason}); restore the file or train again"
    )
