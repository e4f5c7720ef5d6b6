"""The rknn-toolkit2 side of effnet's .rknn export: runs under the toolkit's own Python environment
(``make rknn-env`` -> ``.venv-rknn``), never effnet's, so it imports only the standard library, numpy and
``rknn``. effnet (`effnet.export.rknn`) starts it as a subprocess and talks to it through files and lines.

    python rknn_worker.py serve JOB.json    build the model from ONNX, optionally export the .rknn file, then
                                            run the toolkit's simulator on request (one JSON line per batch
                                            on stdin, one answer line back)
    python rknn_worker.py analyze JOB.json  build, then write the toolkit's per-layer accuracy analysis

The toolkit's simulator runs only a model built in the same process (``load_rknn`` files need a board), so
both commands build from the ONNX file and calibration images that the export keeps beside the .rknn file.
The toolkit logs to stdout; this script moves that to stderr and answers on the original stdout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def _check(result, step: str) -> None:
    if result != 0:
        raise RuntimeError(f"rknn-toolkit2 {step} failed (returned {result}); see the toolkit's log above")


def build(job: dict, work: Path):
    """An RKNN object built from ``job["onnx"]`` as the job says (target, quantized dtype, algorithm,
    mean / std in pixel units), calibrated on the images of ``job["calibration"]`` (an .npz of uint8 NCHW
    pixel images)."""
    import numpy as np
    from rknn.api import RKNN

    rknn = RKNN(verbose=bool(os.environ.get("EFFNET_VERBOSE")))
    _check(
        rknn.config(
            mean_values=[job["mean"]],
            std_values=[job["std"]],
            target_platform=job["target"],
            quantized_dtype=job["dtype"] or "w8a8",
            quantized_algorithm=job["algorithm"],
            custom_string=job.get("custom_string"),
        ),
        "config",
    )
    _check(rknn.load_onnx(job["onnx"]), "load_onnx")
    dataset = None
    if job["dtype"]:
        images = np.load(job["calibration"])["images"]
        names = []
        for index, image in enumerate(images):
            name = work / f"calibration-{index:04d}.npy"
            np.save(name, image[None].astype(np.float32))  # the toolkit reads (1, C, H, W) arrays
            names.append(str(name))
        dataset = work / "dataset.txt"
        dataset.write_text("\n".join(names) + "\n")
    _check(rknn.build(do_quantization=bool(job["dtype"]), dataset=str(dataset) if dataset else None), "build")
    return rknn


def serve(job: dict, answers) -> None:
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="effnet-rknn-") as folder:
        rknn = build(job, Path(folder))
        if job.get("export"):
            _check(rknn.export_rknn(job["export"]), "export_rknn")
        _check(rknn.init_runtime(), "init_runtime (simulator)")
        answers.write("ready\n")
        answers.flush()
        for line in sys.stdin:
            request = json.loads(line)
            try:
                batch = np.load(request["inputs"])  # (N, H, W, C) float32 pixels
                outputs = [
                    rknn.inference(inputs=[image[None]], data_format="nhwc")[0].reshape(-1) for image in batch
                ]
                np.save(request["outputs"], np.stack(outputs).astype(np.float32))
                answers.write("ok\n")
            except Exception as error:  # the toolkit raises many types; the caller needs one line
                answers.write(f"error: {type(error).__name__}: {error}".replace("\n", " ") + "\n")
            answers.flush()
        rknn.release()


def analyze(job: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="effnet-rknn-") as folder:
        rknn = build(job, Path(folder))
        _check(
            rknn.accuracy_analysis(inputs=job["analysis_inputs"], output_dir=job["analysis_dir"]), "analysis"
        )
        rknn.release()


def main() -> int:
    command, job_file = sys.argv[1], sys.argv[2]
    job = json.loads(Path(job_file).read_text())
    answers = os.fdopen(os.dup(1), "w")  # the protocol keeps the real stdout ...
    os.dup2(2, 1)  # ... and the toolkit's prints go to stderr
    if command == "serve":
        serve(job, answers)
    elif command == "analyze":
        analyze(job)
    else:
        raise SystemExit(f"unknown command {command!r}; expected serve or analyze")
    return 0


if __name__ == "__main__":
    sys.exit(main())
