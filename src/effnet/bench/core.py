"""`run_bench`: size, params, MACs, latency and throughput of models in each format, on this machine."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.bench.formats import DEFAULT_FORMATS, FORMATS
from effnet.bench.latency import NOISE_RATIO, measure
from effnet.bench.runners import FormatSkipped, Session, runner_for, torch_threads
from effnet.profiling import count_params, profile
from effnet.runtime.cpu import cpu_info

CALIBRATION_IMAGES = 48  # two thirds calibrate int8, the rest check the quantized file
SEGMENTER_CLASSES = 21  # a benchmarked segmenter's head: Pascal VOC's 20 classes and the background
DETECTOR_CLASSES = 90  # a benchmarked detector's head: COCO's 90 category ids, as TFLite's detection models
EVAL_BATCH = 32
LATENCY_KEYS = (
    "latency_ms_median",
    "latency_ms_p10",
    "latency_ms_p90",
    "images_per_s",
    "spread",
    "attempts",
    "noisy",
)


@dataclass
class BenchModel:
    """A network to measure and what the rows say about it."""

    name: str
    family: str
    network: nn.Module
    key: str  # names its cached files in the work folder
    labels: list[str] | None = None
    top1_reference: float | None = None
    pretrained: bool = False


def run_bench(
    models: Sequence[str] | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    threads: Sequence[int] = (1,),
    batch: int = 1,
    resolution: int | None = None,
    runs: int = 50,
    warmup: int = 5,
    family: str | None = None,
    run_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    pretrained: bool = False,
    noise_ratio: float = NOISE_RATIO,
    progress: bool | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure each (model, format, threads) on this machine's CPU; one dict per row.

    - ``models``: names from `effnet.list_models()` (or ``family``: all of one family), or ``run_dir``: a
      folder written by `effnet train` (its model, labels and training images for calibration). Detector
      names (`effnet.list_detectors()`) measure the detector with random weights and `DETECTOR_CLASSES`
      classes, timed whole: network and post-processing (NMS), as its exported file runs (formats torch,
      onnx, onnx-int8, tflite, tflite-int8).
    - ``formats``: ``"torch"`` (eager), ``"torch-compile"``, ``"onnx"``, ``"onnx-int8"``, ``"onnx-int16"``
      (ONNX Runtime), ``"tflite"``, ``"tflite-int8"``, ``"tflite-int16"`` (LiteRT). Files are exported once
      with `effnet.export` into ``workdir`` (default: a temporary folder, removed afterwards; a given one is
      reused on the next call). int16 files (int16 activations, int8 weights) are for NPUs; on a CPU they
      measure the reference kernels. int8 and int16 files are calibrated on real images: the run's
      training images, else crops of the photos scikit-learn / scikit-image ship.
    - ``threads``: CPU threads per measurement (PyTorch intra-op, ONNX Runtime intra-op, LiteRT interpreter).
    - ``runs`` timed calls after ``warmup`` calls, on a batch of ``batch`` real images at ``resolution``
      (default: the model's). A measurement whose p90 / median exceeds ``noise_ratio`` is repeated (twice at
      most) and the least noisy attempt kept; ``noisy`` says whether it stayed above.
    - ``data_dir`` (with ``run_dir``): an image folder with the run's classes; each format's file is
      evaluated on it (``accuracy``).
    - ``pretrained``: load each named model's default weights (latency and size do not depend on them; int8
      agreement does). Random weights otherwise.

    Each row: ``model, family, format, threads, batch, resolution, size_bytes, params, macs,
    latency_ms_median, latency_ms_p10, latency_ms_p90, images_per_s, spread, attempts, noisy,
    top1_reference, accuracy, file, skipped, cpu, cpu_features`` (``skipped``: None, or why the format could
    not run here, then the latency fields are None; ``cpu``: this machine's CPU model and ``cpu_features`` its
    int8-relevant instruction sets, see `effnet.runtime.cpu`, None where they cannot be read). ``on_row``
    is called with each row as soon as it is measured.
    """
    formats = check_formats(formats)
    threads = _check_positive_ints("threads", threads)
    for name, value in (("batch", batch), ("runs", runs)):
        _check_positive_ints(name, [value])
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if data_dir is not None and run_dir is None:
        raise ValueError(
            "--data needs --run: accuracy is measured for a trained run's model on a folder of its classes"
        )
    bench_models = resolve_models(models, family, run_dir, resolution, pretrained)
    dataset = _load_data(data_dir, bench_models[0]) if data_dir is not None else None
    rows: list[dict[str, Any]] = []
    total = len(bench_models) * len(formats) * len(threads)
    with _workdir(workdir) as folder, _progress(progress, total) as bar:
        for model in bench_models:
            representative = _representative(model, run_dir)
            base = {
                "model": model.name,
                "family": model.family,
                "batch": batch,
                "resolution": model.network.preprocessing.input_size[0],
                "params": count_params(model.network),
                "macs": profile(model.network).macs,
                "top1_reference": model.top1_reference,
                **cpu_info().to_dict(),
            }
            timed_input = np.repeat(representative[:1], batch, axis=0)
            for file_format in formats:
                bar.set_description(f"{model.name} {file_format}: building")
                runner = runner_for(file_format, model.network)(
                    model.network, model.key, folder, representative, model.labels, batch
                )
                skipped: str | None = None
                try:
                    with _quiet_export(model):
                        runner.build()
                except FormatSkipped as error:
                    skipped = str(error)
                accuracy = None
                for thread_count in threads:
                    bar.set_description(f"{model.name} {file_format} {thread_count} thread(s)")
                    timing = None
                    if skipped is None:
                        try:
                            timing, accuracy = _measure_one(
                                runner,
                                thread_count,
                                timed_input,
                                runs,
                                warmup,
                                noise_ratio,
                                dataset,
                                accuracy,
                            )
                        except FormatSkipped as error:
                            skipped = str(error)
                    row = {
                        **base,
                        "format": file_format,
                        "threads": thread_count,
                        "size_bytes": runner.size_bytes if runner.path is not None else None,
                        **_timing_fields(timing, batch),
                        "accuracy": accuracy,
                        "file": str(runner.path) if runner.path is not None and workdir else None,
                        "skipped": skipped,
                    }
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
                    bar.update(1)
    return rows


def _measure_one(runner, threads, timed_input, runs, warmup, noise_ratio, dataset, accuracy):
    """(timing, accuracy) of one runner at one thread count; accuracy is measured once per format."""
    with torch_threads(threads):
        session = runner.session(threads)
        timing = measure(lambda: session(timed_input), runs, warmup, noise_ratio=noise_ratio)
        if dataset is not None and accuracy is None:
            accuracy = _accuracy(session, dataset, runner.model)
    return timing, accuracy


# --- models -------------------------------------------------------------------------------------------------


def resolve_models(
    models: Sequence[str] | None,
    family: str | None,
    run_dir: str | os.PathLike | None,
    resolution: int | None,
    pretrained: bool = False,
) -> list[BenchModel]:
    """The networks to measure, each at ``resolution`` (default: its own); clear errors for bad names."""
    from effnet.factory import create_model
    from effnet.models import get_config, list_models

    if resolution is not None:
        _check_positive_ints("resolution", [resolution])
    if run_dir is not None:
        if models or family:
            raise ValueError("pass either --run or --models/--family, not both")
        return [_run_model(Path(run_dir), resolution)]
    names = list(models or [])
    if family is not None:
        try:
            names += list_models(family=family)
        except ValueError as error:
            raise ValueError(f"--family: {error}") from None
    if not names:
        raise ValueError("no model to measure: pass --models NAME[,NAME...], --family F or --run RUN_DIR")
    detectors = _detector_names()
    segmenters = _segmenter_names()
    names = [
        name if name in detectors | segmenters else _full_name(name, set(list_models())) for name in names
    ]
    result = []
    for name in dict.fromkeys(names):
        if name in detectors:
            result.append(_detector_model(name, resolution))
            continue
        if name in segmenters:
            result.append(_segmenter_model(name, resolution))
            continue
        network = create_model(name, pretrained=pretrained).eval()
        if resolution is not None:
            network.preprocessing = network.preprocessing.with_size(resolution)
        size = network.preprocessing.input_size[0]
        weights = "pretrained" if pretrained else "random"
        config = get_config(name)
        key = f"{name}-{size}-{weights}"
        result.append(BenchModel(name, config.family, network, key, None, config.top1, pretrained))
    return result


def _detector_names() -> set[str]:
    from effnet.models.detection import list_detectors

    return set(list_detectors())


def _detector_model(name: str, resolution: int | None) -> BenchModel:
    """A detector with random weights and its post-processing, as its exported file runs."""
    from effnet.export.detection import DetectorWithPostprocess
    from effnet.models.detection import build_detector
    from effnet.models.detection.postprocess import DetectionPostprocess

    torch.manual_seed(0)
    detector = build_detector(name, DETECTOR_CLASSES, input_size=resolution).eval()
    postprocess = DetectionPostprocess(
        detector.anchor_grid(), detector.spec.box_coder_weights, detector.input_size
    )
    network = DetectorWithPostprocess(detector, postprocess).eval()
    key = f"{name}-{detector.input_size}-{DETECTOR_CLASSES}classes-random"
    return BenchModel(name, detector.spec.architecture, network, key)


def _segmenter_names() -> set[str]:
    from effnet.models.segmentation import list_segmenters

    return set(list_segmenters())


def _segmenter_model(name: str, resolution: int | None) -> BenchModel:
    """A segmenter with random weights and `SEGMENTER_CLASSES` classes, as its exported file runs
    (per-pixel logits at the input size)."""
    from effnet.image_segmenter.exporting import SegmentationExport
    from effnet.models.segmentation import build_segmenter

    torch.manual_seed(0)
    segmenter = build_segmenter(name, SEGMENTER_CLASSES, input_size=resolution).eval()
    labels = [str(index) for index in range(SEGMENTER_CLASSES)]
    network = SegmentationExport(segmenter, labels).eval()
    key = f"{name}-{segmenter.input_size}-{SEGMENTER_CLASSES}classes-random"
    return BenchModel(name, segmenter.spec.head, network, key, labels)


def _full_name(name: str, known: set[str]) -> str:
    """A registry name; EfficientNet short names are accepted (``lite0``, ``b0``, ``v2_b0``)."""
    if name in known:
        return name
    if f"efficientnet_{name}" in known:
        return f"efficientnet_{name}"
    raise ValueError(
        f"--models: unknown model {name!r}; run `effnet models` to list them (detectors: "
        "`effnet models --family efficientdet_lite`)"
    )


def _run_model(run_dir: Path, resolution: int | None) -> BenchModel:
    from effnet.image_classifier import load

    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"--run: {run_dir} is not a folder; pass a run folder written by `effnet train`"
        )
    from effnet.image_segmenter.segmenter import FORMAT
    from effnet.training.run_folder import holds_run_of

    if holds_run_of(run_dir, FORMAT):
        return _segmenter_run_model(run_dir, resolution)
    classifier = load(run_dir)
    network = classifier.network.eval()
    if resolution is not None:
        network.preprocessing = network.preprocessing.with_size(resolution)
    weights = run_dir / "model.safetensors"
    stamp = f"{run_dir.resolve()}:{weights.stat().st_mtime_ns if weights.exists() else 0}"
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:8]
    size = network.preprocessing.input_size[0]
    return BenchModel(
        name=f"{classifier.model_spec.name} ({run_dir.name})",
        family=network.config.family,
        network=network,
        key=f"run-{run_dir.name}-{digest}-{size}",
        labels=list(classifier.index_to_label),
        top1_reference=None,
        pretrained=True,
    )


def _segmenter_run_model(run_dir: Path, resolution: int | None) -> BenchModel:
    """A trained segmenter of ``run_dir`` as its exported file runs; ``resolution`` is not applied (the
    input size is part of what it was trained for)."""
    from effnet.image_segmenter import load
    from effnet.image_segmenter.exporting import SegmentationExport

    del resolution
    segmenter = load(run_dir)
    network = SegmentationExport(segmenter.network, segmenter.label_names).eval()
    weights = run_dir / "model.safetensors"
    stamp = f"{run_dir.resolve()}:{weights.stat().st_mtime_ns if weights.exists() else 0}"
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:8]
    return BenchModel(
        name=f"{segmenter.network.name} ({run_dir.name})",
        family=segmenter.network.spec.head,
        network=network,
        key=f"run-{run_dir.name}-{digest}-{segmenter.input_size}",
        labels=segmenter.label_names,
        top1_reference=None,
        pretrained=True,
    )


def _representative(model: BenchModel, run_dir: str | os.PathLike | None) -> np.ndarray:
    """Calibration and timing images: the run's training images when there are enough, else photo crops."""
    from effnet.bench.images import photo_crops
    from effnet.export.representative import representative_arrays

    preprocessing = model.network.preprocessing
    if run_dir is not None:
        splits = Path(run_dir) / "splits.json"
        if splits.is_file():
            # paths are as `effnet train` was given them (often relative to where it ran): keep those here
            paths = [p for p in json.loads(splits.read_text()).get("train", []) if Path(p).is_file()]
            rng = np.random.default_rng(0)
            chosen = [paths[i] for i in rng.permutation(len(paths))[:CALIBRATION_IMAGES]]
            if len(chosen) >= 8:
                return representative_arrays(chosen, preprocessing, CALIBRATION_IMAGES)
    return photo_crops(preprocessing, CALIBRATION_IMAGES)


# --- accuracy -----------------------------------------------------------------------------------------------


def _load_data(data_dir: str | os.PathLike, model: BenchModel):
    from effnet.data import ImageDataset

    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--data: {folder} is not a folder; pass an image folder with one sub-folder per class"
        )
    try:
        dataset = ImageDataset.from_folder(folder, shuffle=False)
    except ValueError as error:
        raise ValueError(f"--data: {error}") from None
    if model.labels is not None and list(dataset.index_to_label) != model.labels:
        raise ValueError(
            f"--data: {folder} has classes {list(dataset.index_to_label)[:5]}..., the run's model "
            f"{model.labels[:5]}...; pass a folder with the run's class sub-folders"
        )
    return dataset


def _accuracy(session: Session, dataset, network: nn.Module) -> float:
    """Top-1 accuracy of one format's session on the folder, decoded with the model's eval transform."""
    from effnet.data.transforms import EvalTransform

    correct = total = 0
    transform = EvalTransform(network.preprocessing)
    for images, labels in dataset.iter_batches(transform, EVAL_BATCH, progress=False):
        correct += int((session(images).argmax(axis=1) == labels).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("--data: no readable image in the folder")
    return correct / total


# --- helpers ------------------------------------------------------------------------------------------------


def _timing_fields(timing, batch: int) -> dict[str, Any]:
    if timing is None:
        return dict.fromkeys(LATENCY_KEYS)
    return {
        "latency_ms_median": round(timing.median_ms, 4),
        "latency_ms_p10": round(timing.p10_ms, 4),
        "latency_ms_p90": round(timing.p90_ms, 4),
        "images_per_s": batch * 1000.0 / timing.median_ms if timing.median_ms > 0 else None,
        "spread": round(timing.spread, 3),
        "attempts": timing.attempts,
        "noisy": timing.noisy,
    }


def check_formats(formats: Sequence[str]) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    result = []
    for name in formats:
        if name not in FORMATS:
            raise ValueError(f"--formats: unknown format {name!r}; choose from {', '.join(FORMATS)}")
        result.append(name)
    if not result:
        raise ValueError(f"--formats: give at least one of {', '.join(FORMATS)}")
    return list(dict.fromkeys(result))


def _check_positive_ints(name: str, values: Sequence[Any]) -> list[int]:
    result = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{name}: expected positive integers, got {value!r}")
        result.append(value)
    if not result:
        raise ValueError(f"--{name}: give at least one value")
    return result


@contextlib.contextmanager
def _workdir(workdir: str | os.PathLike | None) -> Iterator[Path]:
    if workdir is not None:
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="effnet-bench-") as folder:
        yield Path(folder)


@contextlib.contextmanager
def _progress(enabled: bool | None, total: int):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="row", disable=False if enabled else (None if enabled is None else True))
    try:
        yield bar
    finally:
        bar.close()


@contextlib.contextmanager
def _quiet_export(model: BenchModel) -> Iterator[None]:
    """Random-weight models agree poorly with their int8 file (nothing to learn from that): no warning."""
    logger = logging.getLogger("effnet.export")
    level = logger.level
    if not model.pretrained:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
