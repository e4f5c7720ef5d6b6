"""Box coding and IoU by hand-computed cases, and the anchors in the order the heads emit predictions."""

import math

import pytest
import torch

from effnet.models.detection import build_detector
from effnet.models.detection.anchors import feature_sizes
from effnet.models.detection.boxes import MAX_LOG_RATIO, box_iou, decode, encode

pytestmark = pytest.mark.usefixtures(
    "one_torch_thread"
)  # two OpenMP threads on a shared 2-core machine stall


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    # [0,10]^2 vs [5,15]x[0,10]: intersection 50, union 150; [5,15]^2 vs it: 25 / 175
    expected = torch.tensor([[1.0, 50 / 150, 0.0], [25 / 175, 50 / 150, 0.0]])
    assert torch.allclose(iou, expected)
    empty = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    assert box_iou(empty, empty).item() == 0.0


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_round_trip(weights):
    generator = torch.Generator().manual_seed(0)
    anchors = torch.rand(100, 2, generator=generator) * 200
    anchors = torch.cat([anchors, anchors + 5 + torch.rand(100, 2, generator=generator) * 80], dim=1)
    boxes = torch.rand(100, 2, generator=generator) * 200
    boxes = torch.cat([boxes, boxes + 1 + torch.rand(100, 2, generator=generator) * 150], dim=1)
    deltas = encode(boxes, anchors, weights)
    assert torch.allclose(decode(deltas, anchors, weights), boxes, atol=1e-3)
    assert torch.allclose(box_iou(decode(deltas, anchors, weights), boxes).diag(), torch.ones(100))


def test_encode_by_hand_and_decode_clamp():
    anchor = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # center (5, 10), 10 x 20
    box = torch.tensor([[5.0, 10.0, 25.0, 30.0]])  # center (15, 20), 20 x 20
    deltas = encode(box, anchor, (10.0, 10.0, 5.0, 5.0))
    assert torch.allclose(deltas, torch.tensor([[10 * 10 / 10, 10 * 10 / 20, 5 * math.log(2), 0.0]]))
    huge = decode(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), anchor)
    width = huge[0, 2] - huge[0, 0]
    assert torch.isclose(width, torch.tensor(10 * math.exp(MAX_LOG_RATIO)))  # 625 px, not exp(100)


def test_efficientdet_anchors_by_hand():
    anchors = build_detector("efficientdet_lite0", 2, input_size=64).anchor_boxes()
    # automl anchors.py: the first location of P3 (stride 8) is centered at (4, 4); anchor_scale 3 gives a
    # 24 px square, then 2**(1/3) and 2**(2/3) octaves; aspect ratio 2.0 is wide (w/h = 2)
    assert torch.allclose(anchors[0], torch.tensor([-8.0, -8.0, 16.0, 16.0]))
    w, h = anchors[1, 2] - anchors[1, 0], anchors[1, 3] - anchors[1, 1]
    assert torch.isclose(w / h, torch.tensor(2.0)) and torch.isclose(w * h, torch.tensor(24.0 * 24))
    assert torch.isclose(anchors[3, 2] - anchors[3, 0], torch.tensor(24 * 2 ** (1 / 3)))
    # the next location is one stride to the right (row-major)
    assert torch.allclose(anchors[9], anchors[0] + torch.tensor([8.0, 0.0, 8.0, 0.0]))


def test_ssd_default_boxes_by_hand():
    anchors = build_detector("ssdlite_mobilenet_v3_small", 2, input_size=320).anchor_boxes()
    # torchvision DefaultBoxGenerator: s_0 = 0.2 of 320 px at the first 16 px cell (center 8, 8), then
    # sqrt(0.2 * 0.35), then w/h = 2, 1/2, 3, 1/3 at s_0; the last map (1x1) has s_5 = 0.95 and its
    # w/h = 3 box is 0.95 * sqrt(3) wide, clipped to the image's width
    assert torch.allclose(anchors[0], torch.tensor([-24.0, -24.0, 40.0, 40.0]))
    side = math.sqrt(0.2 * 0.35) * 320
    assert torch.allclose(anchors[1], torch.tensor([8 - side / 2, 8 - side / 2, 8 + side / 2, 8 + side / 2]))
    w, h = anchors[4, 2] - anchors[4, 0], anchors[4, 3] - anchors[4, 1]
    assert torch.isclose(w / h, torch.tensor(3.0), rtol=1e-4)
    assert torch.allclose(anchors[-6], torch.tensor([8.0, 8.0, 312.0, 312.0]))
    height = 0.95 / math.sqrt(3) * 320
    assert torch.allclose(anchors[-2], torch.tensor([0.0, 160 - height / 2, 320.0, 160 + height / 2]))


@pytest.mark.parametrize("name", ["efficientdet_lite0", "ssdlite_mobilenet_v3_small"])
def test_prediction_order_is_the_anchor_order(name):
    """Make every predictor output its channel index: prediction i of class c must then come from the
    channel (anchor a, class c) of the level and location that anchor i sits at."""
    size = 96
    model = build_detector(name, 3, input_size=size).eval()
    per_location = model.spec.anchors.per_location
    predictors = []
    if model.spec.architecture == "efficientdet":
        predictors = [model.head.class_net.predict.pointwise]
    else:
        predictors = [block[1] for block in model.head.class_net]
    with torch.no_grad():
        for conv in predictors:
            conv.weight.zero_()
            conv.bias.copy_(torch.arange(conv.out_channels, dtype=torch.float32))
        logits, deltas = model(torch.randn(1, 3, size, size))
    anchors = model.anchor_boxes()
    assert logits.shape == (1, anchors.shape[0], 3) and deltas.shape == (1, anchors.shape[0], 4)
    start = 0
    for side in feature_sizes(model.spec, size):
        count = side * side * per_location
        index = torch.arange(count)
        anchor, location = index % per_location, index // per_location
        for c in range(3):
            assert torch.equal(logits[0, start : start + count, c], (anchor * 3 + c).float())
        # the anchors of a location are centered on that location's cell, row-major
        step = size / side
        centers = (anchors[start : start + count, :2] + anchors[start : start + count, 2:]) / 2
        expected = torch.stack([(location % side + 0.5) * step, (location // side + 0.5) * step], dim=1)
        assert torch.allclose(centers, expected, atol=1e-3)
        start += count
    assert start == anchors.shape[0]


@pytest.mark.parametrize("size", [128, 192, 320, 300])
def test_the_anchor_grid_computes_every_anchor_of_the_table(size):
    """Detector files compute their candidates' anchors from the indices (`AnchorGrid`) instead of storing
    the [A, 4] table: the same boxes for every index, every detector, also where a level's stride is not
    whole (300 px)."""
    from effnet.models.detection.anchors import AnchorGrid, anchor_boxes
    from effnet.models.detection.spec import get_detector_spec, list_detectors

    for name in list_detectors():
        spec = get_detector_spec(name)
        table = anchor_boxes(spec, size)
        computed = AnchorGrid(spec, size)(torch.arange(len(table))[None])  # [1, A] indices, as a batch
        torch.testing.assert_close(computed[0], table, rtol=1e-6, atol=1e-4, msg=name)
