"""One runner per format: build the file once (cached in a work folder), then run batches at a thread count.

Every runner exposes the same three things: ``size_bytes`` (the file a user would ship: safetensors weights
for PyTorch, the exported .onnx / .tflite otherwise), ``session(threads)`` (a callable that runs one
preprocessed float32 (N, C, H, W) batch and returns float32 outputs) and ``batch_limit`` (the largest batch
one call takes, None for any). Exported files go through `effnet.runtime`, as in deployment.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.export import QuantizationConfig, export_onnx, export_tflite

log = logging.getLogger(__name__)

Session = Callable[[np.ndarray], np.ndarray]


class FormatSkipped(Exception):
    """This format cannot run here (missing engine, compiler, unsupported batch): the row says why."""


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """PyTorch intra-op threads for the duration of a measurement."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Runner:
    """Base: ``key`` names the cached file (model, resolution, weights); ``workdir`` holds it."""

    suffix = ""
    batch_limit: int | None = None

    def __init__(
        self,
        model: nn.Module,
        key: str,
        workdir: Path,
        representative: Any,
        labels: Sequence[str] | None,
        batch: int,
    ) -> None:
        self.model = model
        self.key = key
        self.workdir = workdir
        self.representative = representative
        self.labels = labels
        self.batch = batch
        self.path: Path | None = None

    @property
    def size_bytes(self) -> int:
        assert self.path is not None, "build() first"
        return self.path.stat().st_size

    def build(self) -> None:
        raise NotImplementedError

    def session(self, threads: int) -> Session:
        raise NotImplementedError


class TorchRunner(Runner):
    """PyTorch eager, inference mode; the file is the weights as safetensors."""

    suffix = ".safetensors"

    def build(self) -> None:
        from safetensors.torch import save_file

        from effnet.checkpoint import atomic_path

        self.path = self.workdir / f"{self.key}.safetensors"
        if not self.path.exists():
            state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
            with atomic_path(self.path) as tmp:
                save_file(state, tmp)
        self.network = self.model.eval()

    def session(self, threads: int) -> Session:
        network = self.network

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                outputs = network(torch.from_numpy(batch))
            if isinstance(outputs, tuple):  # a detector with its post-processing: the boxes
                return outputs[0].float().numpy()
            return outputs.float().numpy()

        return run


class CompiledTorchRunner(TorchRunner):
    """``torch.compile`` (Inductor, which writes and compiles C++ on the CPU): compiled on the first call."""

    def build(self) -> None:
        super().build()
        try:
            self.network = torch.compile(self.model.eval())
        except Exception as error:  # RuntimeError, or a backend's own error types
            raise FormatSkipped(f"torch.compile unavailable: {_reason(error)}") from None

    def session(self, threads: int) -> Session:
        run = super().session(threads)
        sample = np.zeros((self.batch, *_input_shape(self.model)), np.float32)
        try:
            with torch_threads(threads):
                run(sample)  # compiles here; a failure (no compiler, unsupported op) skips the row
        except Exception as error:
            raise FormatSkipped(f"torch.compile failed: {_reason(error)}") from None
        return run


class ExportedRunner(Runner):
    """An exported file run by `effnet.runtime` (ONNX Runtime or LiteRT) with ``num_threads``."""

    quantization: str | None = None  # "int8" or "int16": calibrated on the representative images

    def export(self, target: Path) -> None:
        raise NotImplementedError

    def build(self) -> None:
        mode = f"-{self.quantization}" if self.quantization else ""
        self.path = self.workdir / f"{self.key}{mode}{self.suffix}"
        if self.path.exists():
            log.info("reusing %s", self.path)
            return
        try:
            self.export(self.path)
        except ImportError as error:
            raise FormatSkipped(str(error)) from None

    def session(self, threads: int) -> Session:
        from effnet import runtime

        try:
            predictor = runtime.load(self.path, num_threads=threads)
        except ImportError as error:
            raise FormatSkipped(str(error)) from None
        return predictor.predict_batch

    def _calibrated_config(self) -> QuantizationConfig | None:
        if self.quantization is None:
            return None
        images = self.representative
        steps = max(1, len(images) * 2 // 3)  # the rest checks the quantized file
        return QuantizationConfig(self.quantization, images, quantization_steps=steps)


class OnnxRunner(ExportedRunner):
    suffix = ".onnx"

    def build(self) -> None:
        if self.batch > 1:
            self.key = f"{self.key}-dynbatch"
        super().build()

    def export(self, target: Path) -> None:
        export_onnx(
            self.model,
            target,
            quantize=self._calibrated_config(),
            representative_data=self.representative,
            labels=self.labels,
            dynamic_batch=self.batch > 1,
        )


class OnnxInt8Runner(OnnxRunner):
    quantization = "int8"


class OnnxInt16Runner(OnnxRunner):
    quantization = "int16"


class TFLiteRunner(ExportedRunner):
    suffix = ".tflite"
    batch_limit = 1

    def build(self) -> None:
        if self.batch > 1:
            raise FormatSkipped("effnet's .tflite files take batch 1 (on-device, one camera frame)")
        super().build()

    def export(self, target: Path) -> None:
        quantization = self._calibrated_config()
        if self.quantization == "int8":
            # uint8 input and output, as TFLite Model Maker exports and as on-device pipelines feed frames
            quantization = QuantizationConfig.for_int8(self.representative, quantization.quantization_steps)
        export_tflite(
            self.model,
            target,
            quantization,
            representative_data=self.representative,
            labels=self.labels,
        )


class TFLiteInt8Runner(TFLiteRunner):
    quantization = "int8"


class TFLiteInt16Runner(TFLiteRunner):
    quantization = "int16"


class RknnRunner(ExportedRunner):
    """A .rknn file for the RK3588 NPU (`effnet.export.rknn`): its size is real, but rknn-toolkit2's
    simulator on x86 says nothing about the NPU's latency, so the row has none."""

    suffix = ".rknn"
    target = "rk3588"

    def export(self, target: Path) -> None:
        from effnet.export.rknn import export_rknn
        from effnet.runtime.rknn_engine import RknnEnvironmentError

        images = self.representative
        steps = max(1, len(images) * 2 // 3)  # the rest checks the file
        try:
            export_rknn(
                self.model,
                target,
                self.quantization,
                self.target,
                images,
                labels=self.labels,
                quantization_steps=steps,
            )
        except RknnEnvironmentError as error:
            raise FormatSkipped(str(error)) from None

    def session(self, threads: int) -> Session:
        raise FormatSkipped(f"simulated: no latency (the {self.target} NPU's own; time it on the board)")


class RknnInt8Runner(RknnRunner):
    quantization = "int8"


class RknnInt16Runner(RknnRunner):
    quantization = "int16"


class RknnFp16Runner(RknnRunner):
    quantization = "fp16"


class DetectorRunner(ExportedRunner):
    """A detector file with its post-processing (`effnet.export.detection.export_detector`), timed whole:
    the model is a `DetectorWithPostprocess`, whose settings the file takes."""

    file_format = ""

    def build(self) -> None:
        if self.batch > 1:
            raise FormatSkipped("effnet's detector files take batch 1")
        self.suffix = f".{self.file_format}"
        super().build()

    def export(self, target: Path) -> None:
        from effnet.export.detection import export_detector

        config = self._calibrated_config()
        if config is not None and self.file_format == "tflite":
            # uint8 input, as on-device pipelines feed camera frames (the outputs stay float32)
            config = QuantizationConfig.for_int8(self.representative, config.quantization_steps)
        post = self.model.postprocess
        export_detector(
            self.model.detector,
            target,
            quantization=config,
            representative_images=self.representative,
            labels=self.labels,
            score_threshold=post.score_threshold,
            iou_threshold=post.iou_threshold,
            max_detections=post.max_detections,
            pre_nms_top_k=post.pre_nms_top_k,
        )

    def session(self, threads: int) -> Session:
        from effnet import runtime

        predictor = runtime.load(self.path, num_threads=threads)
        return lambda batch: predictor.detect_batch(batch)[0]


class DetectorOnnxRunner(DetectorRunner):
    file_format = "onnx"


class DetectorOnnxInt8Runner(DetectorOnnxRunner):
    quantization = "int8"


class DetectorTFLiteRunner(DetectorRunner):
    file_format = "tflite"
    batch_limit = 1


class DetectorTFLiteInt8Runner(DetectorTFLiteRunner):
    quantization = "int8"


class NotForDetectors(Runner):
    def build(self) -> None:
        raise FormatSkipped("not offered for detectors (torch, onnx, onnx-int8, tflite, tflite-int8 are)")


DETECTOR_RUNNERS: dict[str, type[Runner]] = {
    "torch": TorchRunner,
    "onnx": DetectorOnnxRunner,
    "onnx-int8": DetectorOnnxInt8Runner,
    "tflite": DetectorTFLiteRunner,
    "tflite-int8": DetectorTFLiteInt8Runner,
}


def runner_for(file_format: str, network: nn.Module) -> type[Runner]:
    """The runner class of ``file_format`` for ``network`` (a classifier, or a detector with its
    post-processing)."""
    if hasattr(network, "postprocess") and hasattr(network, "detector"):
        return DETECTOR_RUNNERS.get(file_format, NotForDetectors)
    return RUNNERS[file_format]


RUNNERS: dict[str, type[Runner]] = {
    "torch": TorchRunner,
    "torch-compile": CompiledTorchRunner,
    "onnx": OnnxRunner,
    "onnx-int8": OnnxInt8Runner,
    "onnx-int16": OnnxInt16Runner,
    "tflite": TFLiteRunner,
    "tflite-int8": TFLiteInt8Runner,
    "tflite-int16": TFLiteInt16Runner,
    "rknn-int8": RknnInt8Runner,
    "rknn-int16": RknnInt16Runner,
    "rknn-fp16": RknnFp16Runner,
}


def _input_shape(model: nn.Module) -> tuple[int, int, int]:
    height, width = model.preprocessing.input_size
    return (getattr(model, "in_chans", 3), height, width)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first[:200]}"
