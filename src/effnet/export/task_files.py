"""The frame of a task's ``export`` (Model Maker's arguments), shared by the detector and the segmenter
(`export_task_files`): which formats were asked for, the Model Maker options accepted and ignored, and
writing each one into the export folder: a model file (.tflite / .onnx, written by the task), the labels
file, or the run folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from effnet.checkpoint import write_text

FORMATS = ("tflite", "onnx", "label", "saved_model", "checkpoint")


def check_options(options: Iterable[str], accepted: Iterable[str]) -> None:
    """TypeError naming the keyword arguments of ``export()`` not among Model Maker's ``accepted``."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"export() got unknown arguments {unknown}")


def export_formats(
    export_format: str | Sequence[str] | None, saved_model_as: str = "saved_model"
) -> list[str]:
    """The formats asked for, in order, each once: names or ``ExportFormat`` members, any case (default:
    tflite and label). ``saved_model`` (effnet writes its run folder) is named ``saved_model_as``."""
    if export_format is None:
        return ["tflite", "label"]
    names = [export_format] if isinstance(export_format, str) else list(export_format)
    result = []
    for name in names:
        name = str(getattr(name, "value", name)).lower().removeprefix("exportformat.")
        if name not in FORMATS:
            raise ValueError(f"export_format {name!r}: effnet writes {', '.join(FORMATS)}")
        result.append(saved_model_as if name == "saved_model" else name)
    return list(dict.fromkeys(result))


def export_task_files(
    model: Any,
    write_model: Callable[[str, Path, Any, Any], Path],
    export_dir: str | os.PathLike | None = None,
    tflite_filename: str = "model.tflite",
    label_filename: str = "labels.txt",
    saved_model_filename: str = "saved_model",
    export_format: str | Sequence[str] | None = None,
    quantization_config: Any = "default",
    onnx_filename: str = "model.onnx",
    representative_data: Any = None,
    *,
    accepted_options: Iterable[str] = (),
    saved_model_as: str = "saved_model",
    **model_maker_options: Any,
) -> dict[str, Path]:
    """Model Maker's ``export(export_dir, tflite_filename, label_filename, saved_model_filename,
    export_format, quantization_config, onnx_filename, representative_data)`` of a trained ``model`` (with
    ``label_names`` and ``save``): ``{format: path}`` of the files written into ``export_dir`` (None: the
    working folder), in the order of `export_formats`.

    tflite and onnx: ``write_model(format, path, quantization_config, representative_data)`` (the task's
    file); label: the class names, one per line; saved_model / checkpoint: ``model.save`` (the run folder).
    ``model_maker_options`` other than ``accepted_options`` raise TypeError."""
    check_options(model_maker_options, accepted_options)
    formats = export_formats(export_format, saved_model_as)
    folder = Path(export_dir) if export_dir is not None else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name in formats:
        if name in ("tflite", "onnx"):
            path = folder / (tflite_filename if name == "tflite" else onnx_filename)
            written[name] = write_model(name, path, quantization_config, representative_data)
        elif name == "label":
            write_text(folder / label_filename, "\n".join(model.label_names) + "\n")
            written[name] = folder / label_filename
        else:
            written[name] = model.save(folder / saved_model_filename)
    return written
