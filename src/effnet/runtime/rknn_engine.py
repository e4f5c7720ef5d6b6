"""`RknnPredictor`: a `Predictor` for Rockchip NPU .rknn files, run by rknn-toolkit2's simulator on x86.

rknn-toolkit2 pins old numpy / onnx / torch, so it lives in its own Python environment (``make rknn-env``
creates ``.venv-rknn`` in effnet's checkout; ``EFFNET_RKNN_ENV`` names another), and effnet drives it as a
subprocess (`effnet/export/rknn_worker.py`). The toolkit's simulator cannot run a .rknn file by itself (only
a model it has just built), so an effnet export keeps what built the file in a folder beside it,
``model.rknn.sim/``: the float ONNX file, the calibration images and the build settings. The predictor
rebuilds the model from them (seconds to a minute) and runs it in the simulator; on a board, the .rknn file
alone is what runs.

An effnet .rknn file takes RGB pixels (0..255, NHWC, as a camera gives them): the mean / std normalization
is inside the file. `predict_batch` still takes normalized NCHW images like every `Predictor`, and turns
them back into pixels.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from effnet.runtime.errors import ModelFileError
from effnet.runtime.metadata import ModelMetadata
from effnet.runtime.predictor import Predictor, TensorSpec

ENV_VARIABLE = "EFFNET_RKNN_ENV"
ENV_FOLDER = ".venv-rknn"
SIMULATION_SUFFIX = ".sim"  # model.rknn -> model.rknn.sim/
BUILD_FILE = "build.json"
ONNX_FILE = "model.onnx"
CALIBRATION_FILE = "calibration.npz"
WORKER = Path(__file__).resolve().parent.parent / "export" / "rknn_worker.py"
_CHECKOUT = Path(__file__).resolve().parents[3]  # src/effnet/runtime -> the checkout (editable installs)
_LOG_LINES = 4  # lines of the toolkit's log a failure shows
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RknnEnvironmentError(ImportError):
    """rknn-toolkit2's Python environment is missing; the message says how to make it. An ImportError, as
    for the other optional engines: the CLI prints it as one line, `effnet bench` skips the row."""


def rknn_python() -> Path:
    """The Python of rknn-toolkit2's environment: ``$EFFNET_RKNN_ENV/bin/python``, else ``.venv-rknn`` in
    the current folder or in effnet's checkout; `RknnEnvironmentError` naming the fix when none exists."""
    configured = os.environ.get(ENV_VARIABLE)
    folders = [Path(configured)] if configured else [Path.cwd() / ENV_FOLDER, _CHECKOUT / ENV_FOLDER]
    for folder in folders:
        python = folder / "bin" / "python"
        if python.is_file():
            return python.absolute()
    looked = ", ".join(str(folder) for folder in dict.fromkeys(folders))
    raise RknnEnvironmentError(
        f"rknn-toolkit2's environment not found (looked for {looked}); .rknn export and simulation run in "
        f"their own environment: create it with `make rknn-env` in effnet's checkout (about a minute, "
        f"1.5 GB), or point {ENV_VARIABLE} at a virtual environment with rknn-toolkit2 2.5 installed"
    )


def simulation_folder(path: str | os.PathLike) -> Path:
    return Path(os.fspath(path) + SIMULATION_SUFFIX)


class RknnWorker:
    """One rknn-toolkit2 process (`rknn_worker.py`): it builds the model of ``folder`` (optionally exporting
    the .rknn file to ``export``), then runs pixel batches through the simulator until `close`."""

    def __init__(self, folder: Path, export: Path | None = None) -> None:
        folder = folder.absolute()  # the worker runs in its own folder
        self._work = tempfile.TemporaryDirectory(prefix="effnet-rknn-")
        work = Path(self._work.name)
        job = {**build_job(folder), "export": str(export.absolute()) if export else None}
        (work / "job.json").write_text(json.dumps(job))
        self._log_path = work / "toolkit.log"
        self._log = self._log_path.open("w")
        self._process = subprocess.Popen(
            worker_command("serve", work / "job.json"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "TQDM_DISABLE": "1"},
            cwd=work,
        )
        self._requests = 0
        self._answer("building the model")

    def _answer(self, step: str) -> str:
        line = self._process.stdout.readline().strip() if self._process.stdout else ""
        if line in ("ready", "ok"):
            return line
        if not line:
            self._process.wait()
        raise RuntimeError(f"rknn-toolkit2 failed while {step}: {line or self.log_tail()}")

    def log_tail(self) -> str:
        self._log.flush()
        text = _ANSI.sub("", self._log_path.read_text(errors="replace"))
        lines = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
        errors = [line for line in lines if line.startswith(("E ", "ValueError", "RuntimeError"))]
        return " | ".join((errors or lines)[-_LOG_LINES:]) or "no log (the process exited)"

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """The simulator's float32 outputs (N, K) for (N, H, W, C) float32 pixel images."""
        work = Path(self._work.name)
        self._requests += 1
        inputs, outputs = work / f"in-{self._requests}.npy", work / f"out-{self._requests}.npy"
        np.save(inputs, np.ascontiguousarray(pixels, dtype=np.float32))
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"inputs": str(inputs), "outputs": str(outputs)}) + "\n")
        self._process.stdin.flush()
        self._answer("running the simulator")
        result = np.load(outputs)
        inputs.unlink(missing_ok=True)
        outputs.unlink(missing_ok=True)
        return result

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        self._work.cleanup()


def worker_command(command: str, job: Path) -> list[str]:
    """The worker's command line. ``-I`` (isolated): neither PYTHONPATH, the user's site-packages nor the
    script's own folder (which holds effnet's ``rknn.py``) may shadow the toolkit's ``rknn`` package and its
    pinned dependencies."""
    return [str(rknn_python()), "-I", str(WORKER), command, str(job)]


def build_job(folder: Path) -> dict:
    """What the worker builds from a simulation folder: its build.json with absolute paths."""
    folder = folder.absolute()
    settings = json.loads((folder / BUILD_FILE).read_text())
    return {
        **settings["build"],
        "onnx": str(folder / ONNX_FILE),
        "calibration": str(folder / CALIBRATION_FILE),
    }


class RknnPredictor(Predictor):
    """Runs an effnet .rknn file in rknn-toolkit2's simulator (see the module docstring). The toolkit's
    process starts on the first prediction and ends with `close` (or when the predictor is collected).
    ``export``: build and write the .rknn file to ``path`` first (what `effnet.export.rknn` does)."""

    engine = "rknn-toolkit2 simulator"

    def __init__(self, path: str | os.PathLike, folder: Path | None = None, export: bool = False) -> None:
        name = os.fspath(path)
        self.folder = folder or simulation_folder(name)
        if not (self.folder / BUILD_FILE).is_file():
            raise ModelFileError(
                name,
                f"no simulation folder {self.folder.name}/ beside it (the float ONNX file and calibration "
                "images it was built from)",
                "rknn-toolkit2's simulator cannot run a .rknn file by itself: export it with effnet "
                "(`effnet export RUN --format rknn`), which keeps that folder, or run the file on the board",
            )
        settings = json.loads((self.folder / BUILD_FILE).read_text())
        metadata = ModelMetadata.from_dict(settings["metadata"], name)
        height, width = metadata.preprocessing.input_size
        channels = len(settings["build"]["mean"])
        input_spec = TensorSpec("input", (None, height, width, channels), np.dtype(np.float32))
        output_spec = TensorSpec("output", (None, int(settings["outputs"])), np.dtype(np.float32))
        self.target = settings["build"]["target"]
        self._pixel_mean = np.asarray(settings["build"]["mean"], np.float32)
        self._pixel_std = np.asarray(settings["build"]["std"], np.float32)
        self._worker: RknnWorker | None = None
        super().__init__(name, input_spec, output_spec, metadata, 1)
        if export:
            self._worker = RknnWorker(self.folder, export=Path(name))

    def _invoke(self, array: np.ndarray) -> np.ndarray:
        if self._worker is None:
            if not Path(self.path).is_file():
                raise FileNotFoundError(f"{self.path}: no such model file; check the path")
            self._worker = RknnWorker(self.folder)
        return self._worker.run(array * self._pixel_std + self._pixel_mean)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the process ends with us anyway
            self.close()
