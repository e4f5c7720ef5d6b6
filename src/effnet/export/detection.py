"""A detector -> one .onnx or .tflite file that holds the network AND its post-processing (top-k, box
decoding, class-aware greedy NMS; `effnet.models.detection.postprocess`), with effnet metadata, checked.

The file takes one image (plain resize to the square input, no letterbox; normalized as the metadata says)
and has the four outputs of TFLite detection models (`effnet.runtime.detection`): boxes (ymin, xmin, ymax,
xmax) in 0..1, classes, scores, count.

Quantization ("int8", "fp16" or a `QuantizationConfig`) applies to the network (backbone, neck, heads); the
post-processing stays float32, since rounding scores, IoUs and box coordinates to 8 bits would move the NMS
decisions:
- .onnx: the network is exported and quantized alone (ONNX Runtime static QDQ, as `export_onnx` does), then
  joined with a float post-processing graph (`onnx.compose`), so calibration never sees the NMS steps;
- .tflite: the whole module is converted once and ai-edge-quantizer's recipe gets a last entry that leaves
  every operator of the post-processing scope unquantized (the recipe's later entries win).

The check runs the staged file on the held-out / representative images and compares its detections with
PyTorch's (`effnet.export.detection_check`): a float file must give the same detections or the export fails
and nothing is written; a quantized file reports its agreement.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from effnet.checkpoint import write_text
from effnet.export.checks import CHECK_IMAGES, ExportData, ExportedPath, check_and_publish
from effnet.export.conversions import CONVERSIONS
from effnet.export.detection_check import detection_checker
from effnet.export.files import destination, one_line_failure, staging_folder
from effnet.export.metadata import metadata_for
from effnet.export.qat import network_to_quantize
from effnet.export.quantization import QuantizationConfig, resolve_quantization
from effnet.export.torch_model import export_copy, input_range, random_inputs
from effnet.models.detection.postprocess import (
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_PRE_NMS_TOP_K,
    DEFAULT_SCORE_THRESHOLD,
    DetectionPostprocess,
)
from effnet.quiet import native_stderr_captured, quiet_third_party
from effnet.runtime.checksum import seal_onnx
from effnet.runtime.detection import DETECTION_OUTPUTS, resize_for_detection
from effnet.runtime.metadata import append_tflite_metadata
from effnet.runtime.optional import import_optional
from effnet.runtime.predictor import Predictor, nchw_to_nhwc

log = logging.getLogger("effnet.export")

FORMATS = ("onnx", "tflite")
POSTPROCESS_SCOPE = DetectionPostprocess.__name__  # in every post-processing tensor name of a .tflite file
_NETWORK_OUTPUTS = ("class_logits", "box_deltas")
_PREFIX = "postprocess/"
_FLOAT_CHECK_IMAGES = 8
_OPSET = 18


class DetectorWithPostprocess(nn.Module):
    """What a detector file computes: ``images -> (boxes, classes, scores, count)`` (see the module
    docstring). Carries the detector's name, class count and preprocessing for the export pipeline."""

    def __init__(self, detector: nn.Module, postprocess: DetectionPostprocess) -> None:
        super().__init__()
        self.detector = detector
        self.postprocess = postprocess
        self.name = getattr(detector, "name", type(detector).__name__)
        self.num_classes = int(detector.num_classes)
        self.in_chans = int(getattr(getattr(detector, "backbone", None), "in_chans", 3))
        self.preprocessing = detection_preprocessing(detector.preprocessing, detector.input_size)

    def forward(self, images: torch.Tensor):
        class_logits, box_deltas = self.detector(images)
        return self.postprocess(class_logits, box_deltas)


def detection_preprocessing(preprocessing, input_size: int):
    """The preprocessing a detector file records: the backbone's mean / std at the square input, with the
    plain bilinear resize detector training uses (crop_pct 1: nothing is cropped)."""
    return replace(preprocessing, input_size=(input_size, input_size), crop_pct=1.0, interpolation="bilinear")


@quiet_third_party()
def export_detector(
    detector: nn.Module,
    path: str | os.PathLike,
    format: str | None = None,
    quantization: QuantizationConfig | str | None = None,
    representative_images: Any = None,
    labels: Sequence[str] | None = None,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = DEFAULT_IOU_THRESHOLD,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    pre_nms_top_k: int = DEFAULT_PRE_NMS_TOP_K,
) -> ExportedPath:
    """Export ``detector`` (an `effnet.models.detection.Detector`) with its post-processing to one file,
    check it, and write ``labels.txt`` beside it (when there are labels); returns the file's path.

    - ``format``: "onnx" or "tflite" (default: from ``path``'s suffix).
    - ``quantization``: None (float32), "fp16", "int8" (float32 input and outputs), or a
      `QuantizationConfig` (``QuantizationConfig.for_int8(images)``: a .tflite file with uint8 input).
    - ``representative_images``: image files, PIL images or HxWx3 arrays, an
      `effnet.data.detection.DetectionData`, or preprocessed float32 (N, 3, S, S) arrays; required for int8
      (calibration: the first ``quantization_steps``; the rest check the file), used for the check otherwise.
    - ``labels``: class names, index = label (default: ``detector.labels`` if set).
    - ``score_threshold``, ``iou_threshold``, ``max_detections``, ``pre_nms_top_k``: the post-processing
      inside the file (`effnet.models.detection.postprocess`); the runtime's ``detect`` filters further.

    Written next to ``path`` and moved there only after `effnet.runtime` ran it and it matched PyTorch; on
    failure nothing is left behind. The returned path's ``.check`` is a
    `effnet.export.detection_check.DetectionExportCheck`.
    """
    kind = _format(path, format)
    target = destination(path, f".{kind}")
    if kind == "onnx":
        import_optional("onnx", needed_for=".onnx export", package="onnx", extra="onnx")
        import_optional("onnxscript", needed_for=".onnx export", package="onnxscript", extra="onnx")
        import_optional("onnxruntime", needed_for=".onnx export", package="onnxruntime", extra="onnx")
    else:
        with native_stderr_captured():
            import_optional(
                "litert_torch", needed_for=".tflite export", package="litert-torch", extra="litert"
            )
        import_optional(
            "ai_edge_litert", needed_for=".tflite export", package="ai-edge-litert", extra="litert"
        )
    _check_detector(detector)
    config = resolve_quantization(quantization, None)
    if config is not None and config.mode not in ("int8", "fp16"):
        raise ValueError(f"quantization: detector files are float32, 'fp16' or 'int8', got {config.mode!r}")
    int8 = config is not None and config.mode == "int8"
    network = export_copy(detector, kind if int8 else None)
    postprocess = DetectionPostprocess(
        network.anchor_grid(),
        network.spec.box_coder_weights,
        int(network.input_size),
        score_threshold,
        iou_threshold,
        max_detections,
        pre_nms_top_k,
    )
    full = DetectorWithPostprocess(network, postprocess).eval()
    data = _detection_data(full, config, representative_images)
    if config is not None and config.calibrated:
        config = replace(config, representative_data=data.calibration, inference_output_type="float32")
    metadata = _metadata(
        full, labels if labels is not None else getattr(detector, "labels", None), kind, config
    )
    checker = detection_checker(score_threshold)
    with staging_folder(target) as work:
        staged = work / f"model.{kind}"
        if kind == "onnx":
            portable = config is not None and config.portable_onnx
            _write_onnx(full, config, data, work, staged, portable, metadata)
            from effnet.runtime.onnx_engine import OnnxPredictor

            predictor: Predictor = OnnxPredictor(staged)
        else:
            portable = False
            _write_tflite(full, config, data, work, staged, metadata)
            from effnet.runtime.tflite_engine import TFLitePredictor

            predictor = TFLitePredictor(staged)
        exported = check_and_publish(predictor, staged, full, data, target, kind, config, portable, checker)
    if metadata.labels is not None:
        write_text(target.parent / "labels.txt", "\n".join(metadata.labels) + "\n")
    return exported


def _format(path: str | os.PathLike, format: str | None) -> str:
    if format is None:
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix not in FORMATS:
            raise ValueError(f"{path}: cannot tell the format from the suffix; name it .onnx or .tflite")
        return suffix
    name = str(format).lower().lstrip(".")
    if name not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    return name


def _check_detector(detector: Any) -> None:
    needed = ("anchor_boxes", "spec", "num_classes", "input_size", "preprocessing")
    missing = [name for name in needed if not hasattr(detector, name)]
    if not isinstance(detector, nn.Module) or missing:
        raise TypeError(
            f"export_detector expects a detector built by effnet.create_detector, got "
            f"{type(detector).__name__}" + (f" (no {', '.join(missing)})" if missing else "")
        )


def _metadata(full: DetectorWithPostprocess, labels, kind: str, config: QuantizationConfig | None):
    quantization = config.mode if config is not None else "none"
    base = metadata_for(full, labels, "NCHW" if kind == "onnx" else "NHWC", quantization)
    post = full.postprocess
    detection = {
        "outputs": list(DETECTION_OUTPUTS),
        "boxes": "ymin, xmin, ymax, xmax; normalized to 0..1 of the input image",
        "resize": "plain resize to the square input, no letterbox",
        "nms": "greedy, class-aware (exact)",
        "score_threshold": post.score_threshold,
        "iou_threshold": post.iou_threshold,
        "max_detections": post.max_detections,
        "pre_nms_top_k": post.pre_nms_top_k,
        "num_classes": full.num_classes,
    }
    int8_format = config.int8_format if kind == "onnx" and quantization == "int8" else ""
    return replace(base, output="detections", detection=detection, int8_format=int8_format)


# -- images ------------------------------------------------------------------------------------------------


def detection_arrays(images: Any, preprocessing, limit: int) -> np.ndarray:
    """Up to ``limit`` images as the detector's float32 (N, 3, S, S) input: preprocessed arrays pass as
    they are; image files, PIL images, HxWx3 arrays and a `DetectionData`'s images are resized plainly
    (`effnet.runtime.detection.resize_for_detection`). Unreadable images are skipped with a warning."""
    size = preprocessing.input_size
    if hasattr(images, "samples"):  # a DetectionData
        images = [sample.path for sample in images.samples]
    if isinstance(images, (str, os.PathLike)):
        raise TypeError(
            f"representative_images: got the single path {os.fspath(images)!r}; pass a list of image paths "
            "or a DetectionData"
        )
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().float().numpy()
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[1] == 3:
        if tuple(images.shape[2:]) != tuple(size):
            raise ValueError(
                f"representative_images: arrays of shape {images.shape[1:]} do not match the detector input "
                f"(3, {size[0]}, {size[1]}); pass image files or resize them"
            )
        return np.ascontiguousarray(images[:limit], dtype=np.float32)
    from effnet.data.images import ImageDecodeError

    arrays = []
    for image in list(images):
        if len(arrays) >= limit:
            break
        try:
            arrays.append(resize_for_detection(image, preprocessing)[0])
        except ImageDecodeError as error:
            log.warning("representative_images: %s; skipped", error)
    if not arrays:
        raise ValueError(
            "representative_images: no usable image; pass image files, arrays or a DetectionData"
        )
    return np.stack(arrays)


def _detection_data(full: DetectorWithPostprocess, config, images: Any) -> ExportData:
    if config is not None and config.calibrated:
        source = config.representative_data if config.representative_data is not None else images
        if source is None:
            raise ValueError(
                "int8 quantization needs representative_images: image files, arrays or a DetectionData "
                "(a few hundred images like the ones the detector will see)"
            )
        steps = config.quantization_steps
        arrays = detection_arrays(source, full.preprocessing, steps + CHECK_IMAGES)
        calibration, held_out = arrays[:steps], arrays[steps:]
        if len(held_out):
            return ExportData(calibration, held_out, "held-out images")
        return ExportData(calibration, calibration[:CHECK_IMAGES], "calibration images")
    if images is not None:
        limit = CHECK_IMAGES if config is not None else _FLOAT_CHECK_IMAGES
        return ExportData(None, detection_arrays(images, full.preprocessing, limit), "representative images")
    inputs = random_inputs(full.preprocessing, full.in_chans, _FLOAT_CHECK_IMAGES)
    return ExportData(None, inputs, "random inputs")


# -- .onnx -------------------------------------------------------------------------------------------------


def _write_onnx(full, config, data: ExportData, work: Path, staged: Path, portable: bool, metadata) -> None:
    import onnx

    from effnet.export.onnx import network_proto

    network = full.detector
    exported = network_to_quantize(network, config, data, portable)
    proto = network_proto(
        network,
        exported,
        lambda module, path: _network_to_onnx(module, path, full),
        config,
        data,
        input_range(full.preprocessing),
        work,
        portable,
    )
    post_file = work / "postprocess.onnx"
    logits, deltas = _network_outputs(full)

    def convert_postprocess(module: nn.Module, target: Path) -> None:
        with one_line_failure("ONNX export of the post-processing", network):
            torch.onnx.export(
                module,
                (logits, deltas),
                target,
                dynamo=True,
                external_data=False,
                opset_version=_OPSET,
                input_names=list(_NETWORK_OUTPUTS),
                output_names=list(DETECTION_OUTPUTS),
                verbose=False,
            )

    shapes = (tuple(logits.shape), tuple(deltas.shape))
    CONVERSIONS.convert(full.postprocess, post_file, convert_postprocess, "onnx", _OPSET, shapes)
    merged = _joined(proto, onnx.load(post_file))
    for key, value in metadata.to_onnx_props().items():
        entry = merged.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(merged, staged)
    seal_onnx(staged)


def _network_outputs(full) -> tuple[torch.Tensor, torch.Tensor]:
    sample = torch.from_numpy(random_inputs(full.preprocessing, full.in_chans, 1))
    with torch.inference_mode():
        logits, deltas = full.detector(sample)
    return logits.clone(), deltas.clone()


def _network_to_onnx(network: nn.Module, file: Path, full) -> None:
    from effnet.export.onnx import torch_to_onnx

    sample = torch.from_numpy(random_inputs(full.preprocessing, full.in_chans, 1))
    torch_to_onnx(network, file, sample, _OPSET, _NETWORK_OUTPUTS)


def _joined(network: Any, postprocess: Any) -> Any:
    """One ONNX model: ``network``'s outputs feed ``postprocess``'s inputs; the outputs keep their names."""
    import onnx

    _sort_nodes(network.graph)  # float16 conversion appends its input casts at the end
    post = onnx.compose.add_prefix(postprocess, _PREFIX, rename_outputs=False)
    network_opsets = {entry.domain: entry.version for entry in network.opset_import}
    for entry in post.opset_import:  # the quantizer may have raised the network's opset
        entry.version = max(entry.version, network_opsets.get(entry.domain, entry.version))
    post.ir_version = network.ir_version = max(network.ir_version, post.ir_version)
    del network.metadata_props[:]
    merged = onnx.compose.merge_models(
        network, post, io_map=[(name, _PREFIX + name) for name in _NETWORK_OUTPUTS]
    )
    for node in merged.graph.node:
        # the exporter's per-node notes (module path, Python stack trace): over a megabyte for the NMS steps
        del node.metadata_props[:]
        node.doc_string = ""
    _short_names(merged.graph)
    return merged


def _short_names(graph: Any) -> None:
    """Name ``graph``'s nodes and inner tensors by number: the quantizer's names ("backbone.stages.5.3.
    expand.conv.weight_DequantizeLinear_Output" ...) were a tenth of an int8 detector file. The input and
    output names, which the runtime uses, stay."""
    kept = {entry.name for entry in graph.input} | {entry.name for entry in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in kept:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for position, node in enumerate(graph.node):
        node.name = f"n{position}"
        for field in (node.input, node.output):
            for index, name in enumerate(field):
                field[index] = short(name)
    for entry in (*graph.initializer, *graph.value_info):
        entry.name = short(entry.name)


def _sort_nodes(graph: Any) -> None:
    """Order ``graph``'s nodes so that each comes after the nodes whose outputs it reads, as ONNX
    requires."""
    available = {entry.name for entry in graph.input} | {entry.name for entry in graph.initializer}
    available.add("")  # an omitted optional input
    pending, ordered = list(graph.node), []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            return  # a cycle or a dangling input: leave the graph as it is, the ONNX checker names it
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(node) for node in ready}
        pending = [node for node in pending if id(node) not in ready_ids]
    nodes = [type(node)() for node in ordered]
    for copy, node in zip(nodes, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)


# -- .tflite -----------------------------------------------------------------------------------------------


def _write_tflite(full, config, data: ExportData, work: Path, staged: Path, metadata) -> None:
    import litert_torch

    from effnet.export.tflite import _quantize

    network = full.detector
    float_file = work / "float.tflite"
    _full_to_tflite(litert_torch, full, float_file)
    if config is None:
        os.replace(float_file, staged)
    else:
        with one_line_failure(f"{config.mode} .tflite quantization", network):
            quantized = _quantize(
                float_file.read_bytes(), config, data.calibration, full, float_scope=POSTPROCESS_SCOPE
            )
        staged.write_bytes(quantized)
    staged.write_bytes(_short_tensor_names(staged.read_bytes()))
    append_tflite_metadata(staged, metadata)


def _short_tensor_names(model: bytes) -> bytes:
    """The .tflite model with its inner tensors named by index: the converter names each tensor by the
    module path of every op fused into it, over 1 MB of names for a detector (a third of an int8 file). The
    input and output tensors keep their names, and signatures refer to tensors by index."""
    from ai_edge_litert.tools import flatbuffer_utils

    from effnet.export.tflite import pack_model

    parsed = flatbuffer_utils.read_model_from_bytearray(model)
    for graph in parsed.subgraphs:
        kept = set(graph.inputs) | set(graph.outputs)
        for index, tensor in enumerate(graph.tensors):
            if index not in kept:
                tensor.name = f"t{index}"
    return bytes(pack_model(parsed))


def _full_to_tflite(litert_torch: Any, full: nn.Module, file: Path) -> None:
    nchw = random_inputs(full.preprocessing, full.in_chans, 1)
    sample = torch.from_numpy(nchw_to_nhwc(nchw))

    def convert(module: nn.Module, target: Path) -> None:
        wrapped = litert_torch.to_channel_last_io(module, args=[0]).eval()
        with one_line_failure(".tflite conversion", module), native_stderr_captured():
            litert_torch.convert(wrapped, (sample,)).export(str(target))

    CONVERSIONS.convert(full, file, convert, "tflite", tuple(sample.shape))
