"""Writing report files atomically: a reader sees the old file or the complete new one, never half of one.

Figures are built on `matplotlib.figure.Figure` with an Agg canvas attached directly, so making a report
never touches pyplot's global backend (a user's notebook or GUI backend keeps working).
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide permissions, as a plain open() would
    # (tempfile.mkstemp would leave the report readable by its owner only).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches that renders with Agg, independent of pyplot."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_path(path: str | os.PathLike, argument: str = "path") -> Path:
    """``path`` as a Path, checked to name a .png file."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{argument}: {path} does not end in .png; pass a .png file name")
    return path


def save_figure(figure: Figure, path: Path, svg: bool = False) -> Path:
    """Save ``figure`` as PNG at ``path`` (and as SVG next to it if ``svg``), each atomically."""
    formats = ["png", "svg"] if svg else ["png"]
    for fmt in formats:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=DPI, facecolor="white")
        atomic_write_bytes(path if fmt == "png" else path.with_suffix(f".{fmt}"), buffer.getvalue())
    return path
