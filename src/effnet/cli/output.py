"""Text the CLI prints or writes that holds file names: any name must come out, whatever its bytes."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` writable as UTF-8: a file name that is not UTF-8 (Python holds its bytes as surrogate escapes)
    comes out as backslash escapes (``\\xff``) instead of aborting the output with UnicodeEncodeError."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
