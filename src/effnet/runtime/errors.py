"""The error the runtime raises for a file it cannot use."""

from __future__ import annotations


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
