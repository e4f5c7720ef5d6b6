"""The error the runtime raises for a file it cannot use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ModelFileError(ValueError):
    """An exported model file that cannot be loaded: missing, truncated, not a model, or of an unknown kind.
    The message names the file, what was found and what to do."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}; {fix}")


def short_reason(error: BaseException) -> str:
    """The first line of an engine's error message, at most 200 characters, for a one-line explanation."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def check_one_input_one_output(path: str, inputs: int, outputs: int, fix: str) -> None:
    """A classifier or embedder file has one image input and one output; anything else is a ModelFileError."""
    if inputs != 1 or outputs != 1:
        raise ModelFileError(
            path, f"has {inputs} inputs and {outputs} outputs, expected one image input and one output", fix
        )


def metadata_or_error(path: str, read: Callable[[], T], fix: str) -> T:
    """``read()`` (the file's effnet metadata); its ValueError becomes a ModelFileError naming the file."""
    try:
        return read()
    except ValueError as error:
        raise ModelFileError(path, str(error).removeprefix(f"{path}: "), fix) from None


def detection_output_names(path: str, outputs: list[str], inputs: int, fix: str) -> list[str]:
    """A detector file has one image input and the four outputs of `effnet.runtime.detection`, found by
    name (ONNX) or signature order (LiteRT: output_0 .. output_3); anything else is a ModelFileError."""
    from effnet.runtime.detection import DETECTION_OUTPUTS

    for wanted in (list(DETECTION_OUTPUTS), [f"output_{k}" for k in range(len(DETECTION_OUTPUTS))]):
        if inputs == 1 and set(wanted) <= set(outputs):
            return wanted
    raise ModelFileError(
        path,
        f"is marked as a detector but has {inputs} inputs and the outputs {outputs}, expected one image "
        f"input and the outputs {list(DETECTION_OUTPUTS)}",
        fix,
    )
