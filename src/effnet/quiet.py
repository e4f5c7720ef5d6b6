"""Keeping the engines' own output (progress bars, warnings, C++ logs) out of effnet's output.

An int8 .tflite export used to print ai-edge-quantizer's "Running Calibration" bar, torch / torchao /
numpy warnings and TensorFlow's C++ log lines around effnet's few lines. Export wraps the engines in
`quiet_third_party` (Python-level output) and `native_stderr_captured` (C++ output, written to file
descriptor 2 directly). ``EFFNET_VERBOSE=1`` (``effnet --verbose``) turns both off: everything is shown.
No torch here: the runtime uses it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

VERBOSE_VARIABLE = "EFFNET_VERBOSE"

# Terminal control sequences (colors, bold): torch.load's weights_only errors are written with them, and in a
# log file or a JSON field they are noise ("\x1b[1mWeightsUnpickler error\x1b[0m").
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (CSI colors and cursor moves, OSC titles and links)."""
    return _ANSI_ESCAPE.sub("", text)


# Set while an engine is active. The C++ loggers read theirs when the engine is imported, so the imports
# happen inside the block (import_optional in export_tflite).
_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow / LiteRT C++ logs: errors only
    "GLOG_minloglevel": "3",
    "LITERT_TORCH_SHOW_PROGRESS": "n",  # litert-torch's line per conversion stage
}
_LOGGERS = (
    "absl",
    "ai_edge_litert",
    "ai_edge_quantizer",
    "jax",
    "litert_torch",
    "onnx_ir",
    "onnxruntime",
    "onnxscript",
    "torch",  # torch.onnx's "torchvision is not installed" lines, _pytree's register_constant warning
    "torchao",  # "Failed to load ..._C_mxfp8.so" on a machine without its GPU kernels
)
# Modules whose warnings are hidden: the engines and what they call (numpy's "invalid value encountered in
# cast" is attributed to the ai_edge_quantizer module that casts; the LeafSpec FutureWarning to copyreg).
_WARNING_MODULES = (
    r"(absl|ai_edge_\w+|copyreg|jax|jaxlib|litert_torch|numpy|onnx|onnx_ir|onnxruntime|onnxscript"
    r"|tensorflow|torch|torchao|torchvision)(\.|$)"
)


def verbose() -> bool:
    """True when ``EFFNET_VERBOSE`` is set (to anything but "" or "0"): third-party output is shown."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """While active, third-party libraries stay silent: their warnings are ignored, their loggers show
    errors only, tqdm bars created outside effnet are disabled (effnet's own bars still show), and the
    engines' C++ log variables are set, and a library's ``logging.info(...)`` call cannot configure the
    root logger for the whole process (see `_root_logger_unconfigured`). Does nothing when `verbose`."""
    if verbose():
        yield
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environment(_ENVIRONMENT))
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", module=_WARNING_MODULES)
        stack.enter_context(_loggers_at(_LOGGERS, logging.ERROR))
        stack.enter_context(_root_logger_unconfigured())
        stack.enter_context(_foreign_progress_bars_disabled())
        yield


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Output written to file descriptor 2 (C++ logs such as "I0000 ... oneDNN custom operations are on",
    "INFO: Created TensorFlow Lite XNNPACK delegate") goes to a temporary file while active; it is
    written out only if the block raises, so that a failure keeps its details. Wraps engine calls only:
    effnet's own stderr output inside the block would be captured too. Does nothing when `verbose`."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a closed stderr): nothing to capture
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` set in os.environ (a variable the user set keeps the user's value), restored after."""
    before = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _loggers_at(names: tuple[str, ...], level: int) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(level, logger.level))
    try:
        yield
    finally:
        for logger, previous in zip(loggers, before, strict=True):
            logger.setLevel(previous)


@contextlib.contextmanager
def _root_logger_unconfigured() -> Iterator[None]:
    """A module-level ``logging.info(...)`` in litert-torch calls ``logging.basicConfig()`` when the root
    logger has no handler, which would print every later warning as "WARNING:name:message". While active,
    an unconfigured root logger holds `logging.lastResort` (what Python uses for a logger without handlers,
    so effnet's warnings print as before), which makes that call do nothing; it is removed after."""
    added = [logging.lastResort or logging.NullHandler()] if not logging.root.handlers else []
    for handler in added:
        logging.root.addHandler(handler)
    try:
        yield
    finally:
        for handler in added:
            logging.root.removeHandler(handler)


_EFFNET_MODULE = re.compile(r"effnet(\.|$)")
_DISABLE_POSITION = 10  # tqdm(iterable, desc, total, leave, file, ncols, mininterval, maxinterval, ...)


@contextlib.contextmanager
def _foreign_progress_bars_disabled() -> Iterator[None]:
    """tqdm bars whose creator (the first caller outside tqdm) is not an effnet module start disabled.
    (TQDM_DISABLE would not do: tqdm reads it once, when imported.)"""
    import tqdm

    original = tqdm.tqdm.__dict__["__init__"]  # a partialmethod after effnet.distributed silenced a rank

    def __init__(self, *args, **kwargs):
        if not _EFFNET_MODULE.match(_creator_module()):
            if len(args) > _DISABLE_POSITION:
                args = (*args[:_DISABLE_POSITION], True, *args[_DISABLE_POSITION + 1 :])
            else:
                kwargs["disable"] = True
        original.__get__(self, type(self))(*args, **kwargs)

    tqdm.tqdm.__init__ = __init__
    try:
        yield
    finally:
        tqdm.tqdm.__init__ = original


def _creator_module() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != "tqdm" and not name.startswith("tqdm."):
            return name
        frame = frame.f_back
    return ""
