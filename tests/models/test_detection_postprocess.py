"""effnet.models.detection.postprocess: exact greedy, class-aware NMS out of fixed-shape tensor ops, in the
TFLite detection output layout; the same numbers from torch, ONNX Runtime and LiteRT."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from effnet.models.detection.postprocess import DetectionPostprocess, detections_per_image, postprocess


def _random_case(seed: int, anchors: int = 300, classes: int = 3, size: int = 128, spread: float = 1.0):
    """Anchors crowded on a small image (many overlaps), logits and deltas of a plausible scale."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.rand(anchors, 2, generator=generator) * size
    sizes = torch.rand(anchors, 2, generator=generator) * 40 + 8
    anchor_boxes = torch.cat([centers - sizes / 2, centers + sizes / 2], dim=1)
    logits = torch.randn(2, anchors, classes, generator=generator) * 2 * spread
    deltas = torch.randn(2, anchors, 4, generator=generator) * 0.3
    return logits, deltas, anchor_boxes


def _reference(logits, deltas, anchors, weights, size, score_threshold, iou_threshold, max_detections, top_k):
    """Plain-python post-processing of one image: the contract's center-size decode, clip, then the
    sequential greedy NMS loop per class. Returns [(box xyxy pixels, class, score)] by decreasing score."""
    num_classes = logits.shape[1]
    scores = (1 / (1 + np.exp(-logits.astype(np.float64)))).reshape(-1)
    order = np.argsort(-scores, kind="stable")[:top_k]
    wx, wy, ww, wh = weights
    candidates = []
    for pair in order:
        if scores[pair] <= score_threshold:
            continue
        anchor, label = divmod(int(pair), num_classes)
        x0, y0, x1, y1 = anchors[anchor]
        wa, ha = x1 - x0, y1 - y0
        cxa, cya = x0 + wa / 2, y0 + ha / 2
        dx, dy, dw, dh = deltas[anchor]
        cx, cy = dx / wx * wa + cxa, dy / wy * ha + cya
        w = math.exp(min(dw / ww, math.log(1000 / 16))) * wa
        h = math.exp(min(dh / wh, math.log(1000 / 16))) * ha
        box = np.clip([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 0, size)
        candidates.append((box, label, scores[pair]))
    kept = []
    for box, label, score in candidates:
        if all(other_label != label or _iou(box, other) <= iou_threshold for other, other_label, _ in kept):
            kept.append((box, label, score))
    return kept[:max_detections]


def _iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


@pytest.mark.parametrize(
    ("seed", "weights", "iou_threshold", "score_threshold", "top_k", "max_detections"),
    [
        (0, (1.0, 1.0, 1.0, 1.0), 0.5, 0.05, 128, 100),
        (1, (10.0, 10.0, 5.0, 5.0), 0.5, 0.3, 64, 20),
        (2, (1.0, 1.0, 1.0, 1.0), 0.3, 0.0, 200, 50),
        (3, (1.0, 1.0, 1.0, 1.0), 0.7, 0.5, 100, 10),
    ],
)
def test_matches_the_sequential_greedy_nms(
    seed, weights, iou_threshold, score_threshold, top_k, max_detections
):
    logits, deltas, anchors = _random_case(seed)
    boxes, classes, scores, count = postprocess(
        logits, deltas, anchors, weights, 128, score_threshold, iou_threshold, max_detections, top_k
    )
    assert boxes.shape == (2, max_detections, 4) and classes.shape == scores.shape == (2, max_detections)
    assert count.shape == (2,) and all(t.dtype == torch.float32 for t in (boxes, classes, scores, count))
    for image in range(2):
        expected = _reference(
            logits[image].numpy(),
            deltas[image].numpy(),
            anchors.numpy(),
            weights,
            128,
            score_threshold,
            iou_threshold,
            max_detections,
            top_k,
        )
        n = int(count[image])
        assert n == len(expected) > 0
        got_boxes = boxes[image, :n].numpy()[:, [1, 0, 3, 2]] * 128  # back to xyxy pixels
        np.testing.assert_allclose(got_boxes, np.array([e[0] for e in expected]), atol=1e-3)
        np.testing.assert_array_equal(classes[image, :n].numpy(), [e[1] for e in expected])
        np.testing.assert_allclose(scores[image, :n].numpy(), [e[2] for e in expected], rtol=1e-5)
        # padding rows: score, class and box 0
        assert not scores[image, n:].any() and not classes[image, n:].any() and not boxes[image, n:].any()


def test_a_box_suppressed_only_by_a_suppressed_box_is_kept():
    """The chain A > B > C, A overlaps B, B overlaps C, A not C: greedy NMS keeps A and C (Fast NMS, which
    lets suppressed boxes suppress, would drop C)."""
    anchors = torch.tensor([[0.0, 0, 40, 40], [20, 0, 60, 40], [40, 0, 80, 40], [0, 60, 20, 80]])
    logits = torch.tensor([[[3.0], [2.0], [1.0], [-9.0]]])
    deltas = torch.zeros(1, 4, 4)
    boxes, _, scores, count = postprocess(logits, deltas, anchors, (1, 1, 1, 1), 100, 0.1, 0.3, 5, 10)
    assert count.tolist() == [2.0]
    np.testing.assert_allclose(scores[0, :2].numpy(), torch.sigmoid(torch.tensor([3.0, 1.0])).numpy())
    np.testing.assert_allclose(
        boxes[0, 1].numpy(), [0.0, 0.4, 0.4, 0.8]
    )  # C as (ymin, xmin, ymax, xmax) / 100


def test_a_long_suppression_chain_is_resolved_exactly():
    """40 boxes in a row, each overlapping only its neighbours, scores falling along the row: greedy NMS
    keeps every other one, which takes the iteration 39 steps to settle."""
    anchors = torch.tensor([[10.0 * i, 0, 10.0 * i + 16, 16] for i in range(40)])
    logits = torch.linspace(4, -1, 40).reshape(1, 40, 1)
    _, _, scores, count = postprocess(
        logits, torch.zeros(1, 40, 4), anchors, (1, 1, 1, 1), 420, 0.0, 0.2, 40, 40
    )
    assert count.tolist() == [20.0]
    np.testing.assert_allclose(scores[0, :20].numpy(), torch.sigmoid(logits[0, ::2, 0]).numpy())


def test_overlapping_boxes_of_different_classes_are_both_kept():
    anchors = torch.tensor([[10.0, 10, 50, 50]])
    logits = torch.tensor([[[2.0, 1.0]]])
    boxes, classes, _, count = postprocess(logits, torch.zeros(1, 1, 4), anchors, (1, 1, 1, 1), 64)
    assert count.tolist() == [2.0] and classes[0, :2].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(boxes[0, 0].numpy(), boxes[0, 1].numpy())


def test_boxes_are_clipped_and_normalized_for_a_non_square_image():
    anchors = torch.tensor(
        [[-20.0, 30, 60, 90]]
    )  # past the left and bottom edges of a 80 x 160 (h x w) image
    boxes, _, _, count = postprocess(
        torch.ones(1, 1, 1), torch.zeros(1, 1, 4), anchors, (1, 1, 1, 1), (80, 160)
    )
    assert count.tolist() == [1.0]
    np.testing.assert_allclose(boxes[0, 0].numpy(), [30 / 80, 0.0, 1.0, 60 / 160], rtol=1e-6)


def test_detections_per_image_gives_xyxy_pixels_without_padding():
    logits, deltas, anchors = _random_case(4)
    outputs = postprocess(logits, deltas, anchors, (1, 1, 1, 1), (128, 96), 0.3, 0.5, 30, 64)
    per_image = detections_per_image(outputs, (128, 96))
    for image, (boxes, scores, labels) in enumerate(per_image):
        n = int(outputs[3][image])
        assert boxes.shape == (n, 4) and scores.shape == labels.shape == (n,) and labels.dtype == torch.int64
        ymin, xmin, ymax, xmax = outputs[0][image, :n].unbind(-1)
        torch.testing.assert_close(boxes, torch.stack([xmin * 96, ymin * 128, xmax * 96, ymax * 128], -1))


def test_module_holds_anchors_outside_the_state_dict():
    _, _, anchors = _random_case(0, anchors=10)
    module = DetectionPostprocess(anchors, (1, 1, 1, 1), 128)
    assert not module.state_dict()
    logits, deltas, _ = _random_case(0, anchors=10)
    expected = postprocess(logits, deltas, anchors, (1, 1, 1, 1), 128)
    for got, want in zip(module(logits, deltas), expected, strict=True):
        torch.testing.assert_close(got, want)


def _export_case():
    logits, deltas, anchors = _random_case(5, anchors=200, classes=4)
    module = DetectionPostprocess(
        anchors, (10, 10, 5, 5), 128, score_threshold=0.2, max_detections=20, pre_nms_top_k=48
    )
    return module.eval(), logits[:1], deltas[:1]


def _assert_same(outputs, expected):
    assert int(expected[3][0]) > 3  # enough detections to compare
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5)


def test_exports_alone_to_onnx_and_matches_torch(tmp_path):
    pytest.importorskip("onnxscript")
    import onnxruntime

    module, logits, deltas = _export_case()
    file = tmp_path / "postprocess.onnx"
    torch.onnx.export(
        module, (logits, deltas), file, dynamo=True, external_data=False, opset_version=18, verbose=False
    )
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outputs = session.run(None, dict(zip(names, (logits.numpy(), deltas.numpy()), strict=True)))
    _assert_same(outputs, module(logits, deltas))
    # the graph holds every NMS step (K - 1 = 47 products), not the few an eager run of this input needed
    import onnx

    assert sum(node.op_type == "MatMul" for node in onnx.load(file).graph.node) == 47


def test_converts_alone_to_tflite_and_matches_torch(tmp_path):
    litert_torch = pytest.importorskip("litert_torch")
    from ai_edge_litert.interpreter import Interpreter

    module, logits, deltas = _export_case()
    file = tmp_path / "postprocess.tflite"
    litert_torch.convert(module, (logits, deltas)).export(str(file))
    interpreter = Interpreter(model_path=str(file))
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    results = runner(args_0=logits.numpy(), args_1=deltas.numpy())
    _assert_same([results[f"output_{i}"] for i in range(4)], module(logits, deltas))
