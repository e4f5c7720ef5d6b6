"""Quantization-aware fine-tuning of detectors and segmenters: the simulation quantizes each of a detector's
outputs, and the distillation compares what each task outputs (a detector's class probabilities and box
deltas, a segmenter's class distribution per pixel)."""

import numpy as np
import pytest
import torch

import effnet
from effnet.export.qat import QuantizationSimulation, _distillation_loss, quantization_finetune


def test_distillation_compares_a_segmenters_classes_per_pixel_and_a_detectors_two_outputs():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=generator)
    assert float(_distillation_loss(logits, logits, False)) == pytest.approx(0, abs=1e-6)
    # the distribution is over the classes (dim 1): moving pixels around changes the loss, but adding a
    # constant to every class of a pixel does not
    shifted = logits + torch.randn(2, 1, 4, 5, generator=generator)
    assert float(_distillation_loss(shifted, logits, False)) == pytest.approx(0, abs=1e-5)
    assert float(_distillation_loss(logits.flip(-1), logits, False)) > 0.01

    classes, boxes = torch.randn(2, 6, 3, generator=generator), torch.randn(2, 6, 4, generator=generator)
    exact = _distillation_loss((classes, boxes), (classes, boxes), False)
    further = _distillation_loss((classes, boxes + 0.5), (classes, boxes), False)
    assert float(further - exact) == pytest.approx(0.25, rel=1e-5)  # the squared box difference
    assert float(_distillation_loss((-classes, boxes), (classes, boxes), False)) > float(exact)


@pytest.mark.parametrize("task", ["detector", "segmenter"])
def test_finetuning_a_detector_or_segmenter_trains_a_copy_through_the_simulation(task):
    torch.manual_seed(0)
    if task == "detector":
        network = effnet.create_detector(
            "ssdlite_mobilenet_v3_small", 3, input_size=64, pretrained_backbone=False
        )
    else:
        network = effnet.create_segmenter(
            "lraspp_mobilenet_v3_small", 3, input_size=64, pretrained_backbone=False
        )
    network.eval()
    images = np.random.default_rng(0).uniform(-1, 1, (8, 3, 64, 64)).astype(np.float32)
    before = {name: value.clone() for name, value in network.state_dict().items()}

    simulated = QuantizationSimulation(network)
    simulated.calibrate(torch.from_numpy(images), 8)
    with torch.no_grad():
        outputs = network(torch.from_numpy(images[:2]))
    simulated.remove()
    with torch.no_grad():
        float_outputs = network(torch.from_numpy(images[:2]))
    # each output rounded on a grid of its own: a tuple for the detector, one tensor for the segmenter (an
    # untrained detector's class logits are one constant, its prior, which the grid holds exactly)
    assert type(outputs) is type(float_outputs)
    pairs = (
        [(outputs, float_outputs)] if task == "segmenter" else list(zip(outputs, float_outputs, strict=True))
    )
    for fake, real in pairs:
        assert fake.shape == real.shape and len(torch.unique(fake)) <= 256
    assert not torch.equal(*pairs[-1])  # the segmenter's logits, the detector's box deltas

    tuned = quantization_finetune(network, images, steps=2, batch_size=4, progress=False)
    moved = [name for name, value in tuned.state_dict().items() if not torch.equal(value, before[name])]
    assert moved and not any(hasattr(module, "parametrizations") for module in tuned.modules())
    for name, value in network.state_dict().items():  # the caller's network is untouched
        assert torch.equal(value, before[name]), name
