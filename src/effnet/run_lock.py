"""One training process per run folder: an exclusive, non-blocking lock on ``RUN/.effnet.lock``.

Two runs writing the same folder would overwrite each other's checkpoints and weights. The lock is an
``fcntl.flock`` that the operating system drops when the process exits, however it exits (kill -9 too), so
a stale lock file never blocks the next run. The file holds the owner's pid, for the message the second
process prints. Where fcntl does not exist (Windows) the lock is skipped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".effnet.lock"

# lock files this process holds: the CLI holds the lock around `create`, which takes it again
_held: set[str] = set()


class RunFolderBusyError(OSError):
    """Another process holds the run folder's lock."""


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike | None) -> Iterator[None]:
    """Hold ``folder``'s run lock for the block (creating the folder); re-entrant within one process. None:
    no folder, nothing to lock.

    Raises `RunFolderBusyError`, naming the folder and the other process's pid, when another process holds it.
    """
    if folder is None or fcntl is None:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = os.path.realpath(folder / LOCK_FILE)
    if path in _held:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        who = f"process {owner}" if owner.isdigit() else "another process"
        raise RunFolderBusyError(
            f"{folder}: {who} is training into this folder; wait for it to finish or choose another run "
            "folder"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held.add(path)
    try:
        yield
    finally:
        _held.discard(path)
        os.close(fd)  # releases the flock
