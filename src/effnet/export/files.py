"""Writing an exported file so that it either appears complete or not at all.

Everything is built in a hidden work folder next to the destination (same file system, so the final
`os.replace` is atomic), checked there, and only then moved into place. On any failure, or Ctrl-C, the work
folder is removed and the destination keeps whatever it held before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from effnet.checkpoint import new_file_mode, remove_stale_temporaries
from effnet.runtime.errors import short_reason


def destination(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` as a Path, checked to be a file name ending in ``suffix`` (the runtime picks the engine by
    it)."""
    file = Path(path)
    if file.is_dir():
        raise IsADirectoryError(f"{file}: is a folder; pass a file name such as {file / ('model' + suffix)}")
    if file.suffix.lower() != suffix:
        raise ValueError(f"{file}: the file name must end in {suffix} (e.g. {file.with_suffix(suffix).name})")
    return file


@contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A fresh hidden folder next to ``target`` for intermediate files; removed on exit, success or not.
    Work folders of exports killed before (kill -9) are removed first, once they are stale."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def one_line_failure(step: str, network: Any) -> Iterator[None]:
    """Re-raise a failure of ``step`` (torch.export, a converter, a quantizer: each raises many exception
    types, with pages of engine trace) as one RuntimeError line naming the step and the model."""
    try:
        yield
    except Exception as error:
        name = getattr(network, "name", type(network).__name__)
        raise RuntimeError(f"{step} of {name} failed: {short_reason(error)}; nothing was written") from error


def publish(staged: Path, target: Path) -> None:
    """Move a finished, checked file into place (atomic on one file system), with the mode a plain
    ``open()`` would give it (a converter may have written it owner-only)."""
    os.chmod(staged, new_file_mode())
    os.replace(staged, target)
