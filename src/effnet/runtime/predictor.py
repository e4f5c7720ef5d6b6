"""`Predictor`: what every exported file offers, whatever engine runs it. Images in, top-k classes out.

The engine subclasses (`OnnxPredictor`, `TFLitePredictor`) only open the file and run one input array; the
preprocessing (the same `EvalTransform` used in training and evaluation), the input layout, the integer
input/output scaling of quantized files and the batching live here, once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from effnet.data.decoding import decode_batches
from effnet.data.images import ImageDecodeError, ImageSource
from effnet.data.transforms import EvalTransform
from effnet.preprocessing import Preprocessing
from effnet.runtime.detection import (
    DEFAULT_SCORE_THRESHOLD,
    check_score_threshold,
    detections_in_pixels,
    resize_for_detection,
)
from effnet.runtime.errors import ModelFileError
from effnet.runtime.metadata import ModelMetadata
from effnet.runtime.segmentation import labels_at_size

_PREDICT_CHUNK = 32  # images decoded and run together by `predict`: bounds memory for long lists
_DYNAMIC_BATCH = 32  # batch size fed to a file whose batch dimension is dynamic


@dataclass(frozen=True)
class Prediction:
    """One of the top-k classes for an image."""

    label: str
    index: int
    probability: float


@dataclass(frozen=True)
class TensorSpec:
    """The file's input or output tensor as the engine sees it.

    ``shape`` has None for a dynamic dimension. ``scale`` and ``zero_point`` are set for an integer tensor
    of a quantized file: real value = (q - zero_point) * scale.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.zero_point is not None


def default_num_threads() -> int:
    """The CPU cores this process may use (respects taskset / container CPU limits)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Predictor:
    """Runs an exported model file. Build one with `effnet.runtime.load(path)`.

    - `predict(images, top_k)`: file paths, PIL images or HxWxC arrays -> top-k `Prediction` lists.
    - `predict_batch(batch)`: preprocessed float32 (N, C, H, W) -> the model's float32 outputs (logits for a
      classifier), whatever the file's own layout and integer types are.
    - `evaluate(dataset)`: top-1 accuracy on an `ImageDataset`.
    """

    engine: str = ""

    def __init__(
        self,
        path: str | os.PathLike,
        input_spec: TensorSpec,
        output_spec: TensorSpec,
        metadata: ModelMetadata | None,
        num_threads: int,
        preprocessing: Preprocessing | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.input_spec = input_spec
        self.output_spec = output_spec
        self.metadata = metadata
        self.num_threads = num_threads
        if len(input_spec.shape) != 4:
            raise ModelFileError(
                self.path,
                f"input {input_spec.name!r} has shape {input_spec.shape}, expected a 4-D image batch",
                "export an image model with effnet.export",
            )
        self.input_layout = metadata.input_layout if metadata else _guess_layout(input_spec.shape)
        if preprocessing is None and metadata is not None:
            preprocessing = metadata.preprocessing
        self.preprocessing = preprocessing
        if labels is None and metadata is not None and metadata.labels is not None:
            labels = metadata.labels
        self.labels: list[str] | None = list(labels) if labels is not None else None

    # -- what the file expects ------------------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int | None, int, int, int]:
        """(N, C, H, W) of `predict_batch` input; N is None when the file takes any batch size."""
        shape = self.input_spec.shape
        if self.input_layout == "NHWC":
            shape = (shape[0], shape[3], shape[1], shape[2])
        return shape  # type: ignore[return-value]

    @property
    def model_name(self) -> str:
        return self.metadata.model_name if self.metadata else os.path.basename(self.path)

    def __repr__(self) -> str:
        spec = self.input_spec
        labels = f"{len(self.labels)} labels" if self.labels is not None else "no labels"
        return (
            f"{type(self).__name__}({self.path!r}, model={self.model_name!r}, input={spec.shape} "
            f"{spec.dtype.name} {self.input_layout}, {labels}, num_threads={self.num_threads})"
        )

    # -- running ----------------------------------------------------------------------------------------

    def _invoke(self, array: np.ndarray) -> np.ndarray:
        """Run the engine on one array in the file's own layout and dtype; return its raw output."""
        raise NotImplementedError

    def _invoke_outputs(self, array: np.ndarray) -> list[np.ndarray]:
        """Run the engine on one array; return every output, in the order of the file's metadata (a
        detector: `effnet.runtime.detection.DETECTION_OUTPUTS`)."""
        raise NotImplementedError

    @property
    def is_detector(self) -> bool:
        """Whether the file is an object detector (`detect`) rather than a classifier or embedder."""
        return self.metadata is not None and self.metadata.output == "detections"

    @property
    def is_segmenter(self) -> bool:
        """Whether the file is a semantic segmenter (`segment`)."""
        return self.metadata is not None and self.metadata.output == "segmentation"

    def segment(self, images: ImageSource | Iterable[ImageSource]) -> np.ndarray | list[np.ndarray]:
        """A class index per pixel: uint8 [height, width] at the size of the image as given (indices into
        ``labels``); for a list of images, one such mask per image.

        ``images``: file paths, PIL images, HxWxC arrays or encoded bytes; each is resized to the file's
        square input (no crop, as in training) and normalized as its metadata says; the label map is resized
        back by nearest neighbour (`effnet.runtime.segmentation`). An unreadable image raises
        `effnet.data.ImageDecodeError` naming it."""
        if not self.is_segmenter:
            kind = self.metadata.output if self.metadata is not None else "unknown outputs"
            raise ValueError(
                f"{self.path}: is not a segmenter (it outputs {kind}); segment() needs a file exported by "
                "image_segmenter's model.export(); use predict(image) for a classifier, detect(image) for a "
                "detector"
            )
        single = _is_single_image(images)
        preprocessing = self._require_preprocessing()
        masks = []
        for image in _as_image_list(images):
            array, (width, height) = resize_for_detection(image, preprocessing)
            masks.append(labels_at_size(self.predict_batch(array[None])[0], width, height))
        return masks[0] if single else masks

    def _not_a_detector(self, method: str) -> None:
        if self.is_segmenter and method != "predict_batch":
            raise ValueError(
                f"{self.path}: is a segmenter ({self.model_name}); {method}() is for classifiers, use "
                "segment(image) for its label mask"
            )
        if self.is_detector:
            raise ValueError(
                f"{self.path}: is an object detector ({self.model_name}); {method}() is for classifiers, "
                "use detect(image) for its boxes"
            )

    def predict_batch(self, batch: Any) -> np.ndarray:
        """Model outputs (float32 (N, K): logits for a classifier) for preprocessed float32 images of
        shape (N, C, H, W), or one (C, H, W) image. Quantized files get their inputs scaled to integers and
        their outputs scaled back, so the result is comparable to the float model's."""
        self._not_a_detector("predict_batch")
        chunks = self._run_chunks(batch, lambda chunk: [self._invoke(chunk)])
        if not chunks:
            return np.zeros((0, 0), np.float32)
        return self._dequantize_output(np.concatenate([chunk[0] for chunk in chunks]))

    def detect_batch(self, batch: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A detector file's raw outputs for preprocessed float32 images (N, C, H, W) (or one (C, H, W)):
        (boxes [N, D, 4] (ymin, xmin, ymax, xmax) in 0..1, classes [N, D], scores [N, D], count [N]), all
        float32; see `effnet.runtime.detection`."""
        self._require_detector("detect_batch")
        chunks = self._run_chunks(batch, self._invoke_outputs)
        merged = [np.concatenate([chunk[k] for chunk in chunks]).astype(np.float32) for k in range(4)]
        boxes, classes, scores, count = merged
        return boxes, classes, scores, count.reshape(-1)

    def detect(
        self, images: ImageSource | Iterable[ImageSource], score_threshold: float = DEFAULT_SCORE_THRESHOLD
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Objects in an image: a list of ``{"box": [xmin, ymin, xmax, ymax], "label", "index", "score"}``
        with the box in pixels of the image as given, scores >= ``score_threshold``, highest first. For a
        list of images, one such list per image.

        ``images``: file paths, PIL images, HxWxC arrays or encoded bytes; each is resized to the file's
        square input (no letterbox, as in training) and normalized as its metadata says. An unreadable
        image raises `effnet.data.ImageDecodeError` naming it."""
        self._require_detector("detect")
        threshold = check_score_threshold(score_threshold)
        single = _is_single_image(images)
        preprocessing = self._require_preprocessing()
        results = []
        for image in _as_image_list(images):
            array, (width, height) = resize_for_detection(image, preprocessing)
            outputs = self.detect_batch(array[None])
            results.append(
                detections_in_pixels([o[0] for o in outputs], width, height, self.labels, threshold)
            )
        return results[0] if single else results

    def _require_detector(self, method: str) -> None:
        if not self.is_detector:
            kind = self.metadata.output if self.metadata is not None else "unknown outputs"
            raise ValueError(
                f"{self.path}: is not an object detector (it outputs {kind}); {method}() needs a file "
                "exported with effnet.export.detection.export_detector, use predict(image) for a classifier"
            )

    def _run_chunks(self, batch: Any, invoke) -> list[list[np.ndarray]]:
        """``invoke`` on the batch in the file's layout and dtype, in chunks of its batch size; the outputs of
        each chunk, padding rows dropped."""
        array = np.asarray(batch, dtype=np.float32)
        if array.ndim == 3:
            array = array[None]
        expected = self.input_shape
        if array.ndim != 4 or tuple(array.shape[1:]) != tuple(expected[1:]):
            raise ValueError(
                f"{self.path}: expects preprocessed images of shape (N, {expected[1]}, {expected[2]}, "
                f"{expected[3]}) float32, got {tuple(array.shape)}; use predict() for image files, or "
                "effnet.data.transforms_for(predictor.preprocessing) to preprocess"
            )
        # quantize on the contiguous array, then change the layout of the (smaller) integer copy
        array = self._quantize_input(array)
        array = nchw_to_nhwc(array) if self.input_layout == "NHWC" else np.ascontiguousarray(array)
        fixed = self.input_spec.shape[0]
        step = fixed or _DYNAMIC_BATCH
        outputs = []
        for start in range(0, len(array), step):
            chunk = array[start : start + step]
            real = len(chunk)
            if fixed and real < fixed:  # a fixed batch larger than what is left: pad, then drop the padding
                chunk = np.concatenate([chunk, np.zeros((fixed - real, *chunk.shape[1:]), chunk.dtype)])
            outputs.append([output[:real] for output in invoke(chunk)])
        return outputs

    def predict(self, images: ImageSource | Iterable[ImageSource], top_k: int = 5) -> list[list[Prediction]]:
        """The ``top_k`` most probable classes for each image, most probable first.

        ``images``: one image or a list of them: file paths, PIL images, HxW/HxWxC uint8 arrays (or float
        arrays in 0..1), encoded bytes. They are preprocessed as the file's metadata says (resize, crop,
        normalize). An unreadable image raises `effnet.data.ImageDecodeError` naming it.
        """
        results = self.predict_each(images, top_k)
        for result in results:
            if isinstance(result, ImageDecodeError):
                raise result
        return results  # type: ignore[return-value]

    def predict_each(
        self, images: ImageSource | Iterable[ImageSource], top_k: int = 5
    ) -> list[list[Prediction] | ImageDecodeError]:
        """As `predict`, but an unreadable image gets its `ImageDecodeError` in its place in the list, and
        the others are still predicted. Images are decoded in threads, a batch ahead of the engine."""
        self._not_a_detector("predict")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if self.metadata is not None and self.metadata.output != "logits":
            raise ValueError(
                f"{self.path}: outputs {self.metadata.output} (an embedding), not class scores; use "
                "predict_batch() for the feature vectors"
            )
        transform = EvalTransform(self._require_preprocessing())
        items = _as_image_list(images)
        results: list[list[Prediction] | ImageDecodeError] = [[] for _ in items]
        for batch in decode_batches(items, transform, _PREDICT_CHUNK):
            for position, error in batch.failures:
                results[position] = error
            if batch.images is None:
                continue
            probabilities = softmax(self.predict_batch(batch.images))
            for position, row in zip(batch.positions, probabilities, strict=True):
                order = np.argsort(-row, kind="stable")[:top_k]
                results[position] = [Prediction(self._label(int(i)), int(i), float(row[i])) for i in order]
        return results

    def evaluate(
        self,
        dataset: Any,
        batch_size: int = 32,
        num_workers: int | None = None,
        progress: bool | None = None,
    ) -> dict[str, float | int]:
        """Top-1 accuracy of this file on an `ImageDataset`: ``{"accuracy": ..., "num_images": ...}``.

        Images are decoded in ``num_workers`` processes (None: one per CPU) with the file's preprocessing;
        unreadable ones are skipped and reported by the dataset, as in training.
        """
        self._not_a_detector("evaluate")
        if not hasattr(dataset, "iter_batches") or not hasattr(dataset, "index_to_label"):
            raise TypeError(
                f"evaluate expects an effnet ImageDataset (e.g. ImageDataset.from_folder(path)), got "
                f"{type(dataset).__name__}"
            )
        if self.labels is not None and list(dataset.index_to_label) != self.labels:
            raise ValueError(
                f"{self.path}: the data's classes {list(dataset.index_to_label)[:5]}... differ from the "
                f"file's labels {self.labels[:5]}...; evaluate on data with the same class sub-folders"
            )
        transform = EvalTransform(self._require_preprocessing())
        correct = total = 0
        for images, labels in dataset.iter_batches(
            transform, batch_size, num_workers=num_workers, progress=progress
        ):
            predicted = self.predict_batch(images).argmax(axis=1)
            correct += int((predicted == labels).sum())
            total += len(labels)
        if total == 0:
            raise ValueError(f"evaluate: no readable image in {dataset!r}; see dataset.skipped")
        return {"accuracy": correct / total, "num_images": total}

    # -- helpers ----------------------------------------------------------------------------------------

    def _label(self, index: int) -> str:
        if self.labels is not None and index < len(self.labels):
            return self.labels[index]
        return str(index)

    def _require_preprocessing(self) -> Preprocessing:
        if self.preprocessing is None:
            raise ValueError(
                f"{self.path}: has no effnet metadata, so its preprocessing is unknown; pass "
                "preprocessing=effnet.preprocessing.Preprocessing(...) to effnet.runtime.load, or re-export "
                "the model with effnet.export"
            )
        return self.preprocessing

    def _quantize_input(self, array: np.ndarray) -> np.ndarray:
        spec = self.input_spec
        if not spec.quantized:
            return array.astype(spec.dtype, copy=False)
        return to_integers(array, spec.scale, spec.zero_point, spec.dtype)

    def _dequantize_output(self, array: np.ndarray) -> np.ndarray:
        spec = self.output_spec
        if not spec.quantized:
            return array.astype(np.float32, copy=False)
        return ((array.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


def to_integers(array: np.ndarray, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
    """``round(array / scale) + zero_point`` clipped to ``dtype``: a quantized file's integer input."""
    info = np.iinfo(dtype)
    scaled = array / np.float32(scale)  # in place from here: one float32 temporary
    scaled += np.float32(zero_point)
    np.rint(scaled, out=scaled)
    np.clip(scaled, info.min, info.max, out=scaled)
    return scaled.astype(dtype)


def nchw_to_nhwc(array: np.ndarray) -> np.ndarray:
    """A contiguous NHWC copy of an NCHW array. For image inputs (a few channels) it writes one channel at a
    time: numpy's transposing copy reads with a 3-element stride and took 0.26 ms for a 224 px uint8 image,
    this 0.04 ms (a tenth of a Lite0 int8 inference on 2 threads)."""
    count, channels, height, width = array.shape
    if channels > 4:
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1))
    result = np.empty((count, height, width, channels), array.dtype)
    pixels = result.reshape(count, height * width, channels)
    for channel in range(channels):
        pixels[:, :, channel] = array[:, channel].reshape(count, height * width)
    return result


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed in float64 so that large logits do not overflow."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


_SINGLE = (str, os.PathLike, Image.Image, bytes, bytearray, memoryview)


def _is_single_image(images: Any) -> bool:
    return isinstance(images, _SINGLE) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))


def _as_image_list(images: Any) -> list[Any]:
    if isinstance(images, _SINGLE):
        return [images]
    if isinstance(images, np.ndarray):
        return [images] if images.ndim in (2, 3) else list(images)
    items = list(images)
    if not items:
        raise ValueError("predict: got no images; pass a path, a PIL image, an array, or a list of them")
    return items


def _guess_layout(shape: tuple[int | None, ...]) -> str:
    """For a file without effnet metadata: channels are the small dimension (1 or 3) next to the batch."""
    return "NHWC" if shape[3] in (1, 3) and shape[1] not in (1, 3) else "NCHW"
