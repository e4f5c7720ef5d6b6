"""A run folder: where a training run writes its checkpoints, model and reports; one run per folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from effnet import distributed
from effnet.checkpoint import read_json
from effnet.run_lock import run_lock
from effnet.training.checkpoints import FOLDER, LEGACY_FILE

# the files of a finished run, as every task's ``save`` writes them: the weights, the class names (one per
# line), how to rebuild the network, and the epochs' history
WEIGHTS_FILE, LABELS_FILE, CONFIG_FILE, HISTORY_FILE = (
    "model.safetensors",
    "labels.txt",
    "config.json",
    "history.json",
)


def holds_run(folder: str | Path) -> bool:
    """Whether ``folder`` holds a run, finished (config.json) or not (checkpoints)."""
    folder = Path(folder)
    return any((folder / name).exists() for name in (FOLDER, LEGACY_FILE, CONFIG_FILE))


def read_run_config(
    directory: Path,
    run_format: str,
    saved_as: str,
    kind: str,
    hint: str = "",
    default_format: str | None = None,
) -> tuple[Path, dict]:
    """(path, contents) of the config.json a task's ``save`` wrote into ``directory``. A missing one raises
    FileNotFoundError ("not a saved effnet ``saved_as``"); another ``"format"`` than ``run_format`` (a missing
    one counts as ``default_format``) ValueError naming the file, the formats and ``hint``."""
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: not a saved effnet {saved_as} ({CONFIG_FILE} is missing)")
    config = read_json(config_path)
    if config.get("format", default_format) != run_format:
        raise ValueError(
            f"{config_path}: not an effnet {kind} (format {config.get('format')!r}, expected "
            f"{run_format!r}){hint}"
        )
    return config_path, config


def holds_run_of(folder: str | Path, run_format: str) -> bool:
    """Whether ``folder`` holds a finished run whose config.json says ``"format": run_format`` (a missing or
    unreadable config.json: no)."""
    try:
        config = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
        return config.get("format") == run_format
    except (OSError, ValueError, AttributeError):
        return False


def prepare_run_folder(
    folder: str | Path, resume: bool, overwrite: bool, run_files: Sequence[str], is_main: bool = True
) -> None:
    """Make ``folder`` ready for a run: a folder that holds one needs ``resume`` (continue it) or
    ``overwrite`` (start over: on the main process its checkpoints and ``run_files`` are removed)."""
    folder = Path(folder)
    if holds_run(folder) and not (resume or overwrite):
        raise ValueError(
            f"{folder} already holds a run; pass --resume to continue it, --overwrite to start over, "
            "or choose another --out"
        )
    if overwrite and not resume and is_main:
        for name in (LEGACY_FILE, *run_files):
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / FOLDER, ignore_errors=True)


@contextmanager
def run_in_folder(
    folder: str | Path,
    context: distributed.DistContext,
    resume: bool,
    overwrite: bool,
    run_files: Sequence[str],
) -> Iterator[None]:
    """One run at a time in ``folder`` (a lock held by the main process), prepared by `prepare_run_folder`
    before any process goes on."""
    with run_lock(folder if context.is_main else None):
        prepare_run_folder(folder, resume, overwrite, run_files, context.is_main)
        distributed.barrier()
        yield
