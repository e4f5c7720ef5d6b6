"""GPTQ weight rounding (`QuantizationConfig(weight_rounding="gptq")`): the chosen int8 levels lie on the
exporters' grid, land in the file unchanged, and keep the network closer to float than nearest rounding."""

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from effnet import runtime
from effnet.export import QuantizationConfig, export_onnx, export_tflite, rounding
from effnet.export.rounding import WEIGHT_LEVELS, folded_gain, gptq_round, weight_layers

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def levels(layer, bn, with_scale=False):
    """A layer's weights in units of the exporters' per-channel int8 scale, BatchNorm folded in (and that
    scale, with ``with_scale``)."""
    weight = layer.weight.detach().double()
    gain = folded_gain(bn, weight.shape[0]).detach().double()
    folded = weight * gain.reshape((-1,) + (1,) * (weight.dim() - 1))
    scale = folded.flatten(1).abs().amax(1).clamp_min(1e-12) / WEIGHT_LEVELS
    grid = folded / scale.reshape((-1,) + (1,) * (weight.dim() - 1))
    return (grid, scale.numpy()) if with_scale else grid


def nearest_rounded(model):
    """``model`` with every weight rounded to its nearest int8 level (what plain export does)."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for layer, bn in weight_layers(rounded):
            grid = levels(layer, bn)
            layer.weight.copy_((layer.weight.double() * grid.round() / grid.where(grid != 0, 1)).float())
    return rounded


def on_grid(model):
    """Every weight is an integer number of its channel's scale (max |w| / 127): the exporters' own
    rounding keeps it."""
    for layer, bn in weight_layers(model):
        grid = levels(layer, bn)
        assert torch.allclose(grid, grid.round(), atol=1e-3), layer


@pytest.fixture(scope="module")
def rounded(gdc_embedder, photo_arrays):
    return gptq_round(gdc_embedder, photo_arrays[0], progress=False)


def test_gptq_keeps_the_float_network_closer_to_the_original_than_nearest_rounding(
    gdc_embedder, photo_arrays, rounded, mean_cosine, embed
):
    _, held_out = photo_arrays
    before = copy.deepcopy(gdc_embedder.state_dict())
    reference = embed(gdc_embedder, held_out)
    on_grid(rounded)
    # only the conv / linear weights moved, each by at most about a level
    moved = {name for name, value in rounded.state_dict().items() if not torch.equal(value, before[name])}
    assert moved == {
        f"{name}.weight"
        for name, module in rounded.named_modules()
        if hasattr(module, "groups") or isinstance(module, torch.nn.Linear)
    }
    gptq_loss = 1 - mean_cosine(embed(rounded, held_out), reference)
    nearest_loss = 1 - mean_cosine(embed(nearest_rounded(gdc_embedder), held_out), reference)
    print(f"1 - cosine on held-out photos: gptq {gptq_loss:.5f}, nearest {nearest_loss:.5f}")
    assert gptq_loss < 0.5 * nearest_loss
    for name, value in gdc_embedder.state_dict().items():  # the caller's model is untouched
        assert torch.equal(value, before[name]), name


@pytest.fixture(scope="module")
def other_crops(gdc_embedder, photo_crops):
    """Other crops of the calibration photos: on the test photos this untrained head's activations leave
    the calibrated ranges, and that clipping, not the weights, is most of a file's loss."""
    from effnet.data.transforms import EvalTransform

    transform = EvalTransform(gdc_embedder.preprocessing)
    return np.stack([transform(crop) for crop in photo_crops(32, seed=5)])


def file_losses(export, model, calibration, held_out, mode, path, mean_cosine, embed):
    """1 - mean cosine to float on ``held_out`` of the file ``export`` writes, nearest and GPTQ rounding."""
    losses = {}
    for name in ("nearest", "gptq"):
        config = QuantizationConfig(mode, calibration, 96, bias_correction=False, weight_rounding=name)
        written = export(model, path.with_name(f"{name}{path.suffix}"), config)
        losses[name] = 1 - mean_cosine(runtime.load(written).predict_batch(held_out), embed(model, held_out))
    print(f"{mode} {path.suffix}, 1 - cosine to float: {losses}")
    return losses


@pytest.mark.slow
def test_the_file_holds_the_gptq_levels_and_stays_closer_to_float(
    gdc_embedder, photo_arrays, other_crops, rounded, tmp_path, mean_cosine, embed
):
    calibration, _ = photo_arrays
    path = tmp_path / "model.onnx"
    losses = file_losses(
        export_onnx, gdc_embedder, calibration, other_crops, "int16", path, mean_cosine, embed
    )
    assert losses["gptq"] < 0.7 * losses["nearest"]
    # every convolution's int8 weights in the file are the levels GPTQ chose
    initializers = {
        t.name: numpy_helper.to_array(t) for t in onnx.load(tmp_path / "gptq.onnx").graph.initializer
    }
    names = {module: name for name, module in rounded.named_modules()}
    checked = 0
    for layer, bn in weight_layers(rounded):
        if not isinstance(layer, torch.nn.Conv2d):
            continue
        name = names[layer]
        stored, scale = initializers[f"{name}.weight_quantized"], initializers[f"{name}.weight_scale"]
        grid, ours = levels(layer, bn, with_scale=True)
        # ONNX Runtime gives a channel with (almost) all-zero weights a floor scale (they round to 0):
        # those are the only ones whose scale differs
        kept = np.abs(scale - ours) <= 1e-3 * ours
        assert np.all(ours[~kept] < 1e-6), name
        np.testing.assert_array_equal(stored[kept], grid.round().numpy().astype(np.int8)[kept], err_msg=name)
        checked += 1
    assert checked == sum(isinstance(m, torch.nn.Conv2d) for m in rounded.modules())


def test_layers_wider_than_a_block_get_block_diagonal_hessians(
    gdc_embedder, photo_arrays, monkeypatch, mean_cosine, embed
):
    _, held_out = photo_arrays
    monkeypatch.setattr(rounding, "MAX_BLOCK", 100)  # every 1x1 conv with > 100 inputs is split
    blocked = gptq_round(gdc_embedder, photo_arrays[0], progress=False)
    on_grid(blocked)
    reference = embed(gdc_embedder, held_out)
    blocked_loss = 1 - mean_cosine(embed(blocked, held_out), reference)
    nearest_loss = 1 - mean_cosine(embed(nearest_rounded(gdc_embedder), held_out), reference)
    print(f"1 - cosine: blocks of 100 {blocked_loss:.5f}, nearest {nearest_loss:.5f}")
    assert blocked_loss < 0.7 * nearest_loss


@pytest.fixture(scope="module")
def tflite_files(gdc_embedder, photo_arrays, tmp_path_factory, request):
    """int8 .tflite files of ``gdc_embedder`` calibrated on the 96 calibration images, "nearest" (the shared
    post-training baseline) and "gptq" (no bias correction), and "reference": the held-out outputs of the
    float .tflite model that bias correction after GPTQ was given (recorded while exporting that file, whose
    conversions, the rounded copy and the original network, the "gptq" file then reuses)."""
    pytest.importorskip("litert_torch")
    from effnet.export import tflite as tflite_export
    from effnet.export.conversions import CONVERSIONS

    calibration, held_out = photo_arrays
    folder, captured = tmp_path_factory.mktemp("gptq-tflite"), {}

    class TFLiteSpy(tflite_export.TFLiteBiasLayers):
        def __init__(self, float_model, quantized):
            interpreter, outputs = tflite_export._interpreter(float_model), []
            for image in tflite_export._nhwc(held_out):
                tflite_export._invoke(interpreter, image)
                outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
            captured["reference"] = np.concatenate(outputs)
            super().__init__(float_model, quantized)

    CONVERSIONS.clear()  # the spy must see the quantization run, not a result kept from before
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tflite_export, "TFLiteBiasLayers", TFLiteSpy)
        config = QuantizationConfig("int8", calibration, 96, weight_rounding="gptq")
        export_tflite(gdc_embedder, folder / "corrected.tflite", config)
    config = QuantizationConfig("int8", calibration, 96, bias_correction=False, weight_rounding="gptq")
    gptq = export_tflite(gdc_embedder, folder / "gptq.tflite", config)
    # asked for last: made here, the shared baseline reuses the original network's conversion
    nearest = request.getfixturevalue("gdc_int8_tflite")
    return {"nearest": nearest, "gptq": gptq, **captured}


@pytest.mark.slow
def test_tflite_int8_with_gptq_is_closer_to_float(
    gdc_embedder, other_crops, tflite_files, mean_cosine, embed
):
    reference = embed(gdc_embedder, other_crops)
    losses = {
        name: 1 - mean_cosine(runtime.load(tflite_files[name]).predict_batch(other_crops), reference)
        for name in ("nearest", "gptq")
    }
    print(f"int8 .tflite, 1 - cosine to float: {losses}")
    assert losses["gptq"] < 0.8 * losses["nearest"]


def test_the_cosine_warning_suggests_what_the_export_did_not_do():
    from effnet.export.checks import _closer

    plain, rounded, tuned = (
        _closer("int16", False),
        _closer("int16", False, gptq=True),
        _closer("int16", True),
    )
    assert "weight_rounding='gptq'" in plain and "finetune_steps=300" in plain
    assert "weight_rounding" not in rounded and "finetune_steps=300" in rounded
    assert "weight_rounding" not in tuned and "finetune_steps" not in tuned and "fp16" in tuned


@pytest.mark.slow
def test_bias_correction_after_gptq_corrects_towards_the_original_network(
    gdc_embedder, photo_arrays, rounded, tflite_files, tmp_path, monkeypatch, mean_cosine, embed
):
    """Bias correction removes each layer's mean shift from the float network it is given. After GPTQ it
    must be given the original network: against the rounded copy, the weights' own shift is invisible to it
    (on unseen photo types that left the int8 file at 0.9815 cosine, nearest rounding at 0.9862; corrected
    towards the original, 0.9906: README, "int8 and int16 embeddings")."""
    import onnxruntime as ort

    from effnet.export import onnx as onnx_export

    calibration, held_out = photo_arrays
    calibration = calibration[:32]  # which float model the correction is given, not how well it corrects
    original, gptq = embed(gdc_embedder, held_out), embed(rounded, held_out)
    references = {}

    class OnnxSpy(onnx_export.OnnxBiasLayers):
        def __init__(self, float_model, quantized):
            session = ort.InferenceSession(float_model.SerializeToString())
            outputs = [session.run(None, {onnx_export.INPUT_NAME: image[None]})[0] for image in held_out]
            references["onnx"] = np.concatenate(outputs)
            super().__init__(float_model, quantized)

    monkeypatch.setattr(onnx_export, "OnnxBiasLayers", OnnxSpy)
    config = QuantizationConfig("int8", calibration, 32, weight_rounding="gptq")
    export_onnx(gdc_embedder, tmp_path / "model.onnx", config)
    references["tflite"] = tflite_files["reference"]  # the .tflite file's, recorded the same way
    rounding_loss = 1 - mean_cosine(gptq, original)
    for engine, reference in references.items():
        loss = 1 - mean_cosine(reference, original)
        print(
            f"{engine}, 1 - cosine to the original: corrected towards {loss:.2e}, rounded {rounding_loss:.2e}"
        )
        assert loss < 0.01 * rounding_loss, engine
    assert set(references) == {"onnx", "tflite"}


def test_units_whose_inputs_overflow_or_degenerate_fall_back_to_nearest_rounding(caplog):
    """A Hessian with inf (an untrained deep network's activations overflowing float32) or one that is not
    positive definite gives nearest rounding for that unit instead of a Cholesky error; the other units keep
    their GPTQ rounding; `gptq_round` warns once, counting the layers."""
    generator = torch.Generator().manual_seed(0)
    levels = torch.randn(3, 4, 6, generator=generator, dtype=torch.float64) * 40
    inputs = torch.randn(6, 50, generator=generator, dtype=torch.float64)
    correlated = inputs @ inputs.T / 50 + 0.9  # strongly correlated inputs: GPTQ differs from nearest
    hessian = correlated.expand(3, 6, 6).clone()
    alone, none_fell_back = rounding._gptq(levels[2:], hessian[2:], 0.01)
    hessian[0, 1, 1] = float("inf")
    hessian[1] = -torch.eye(6, dtype=torch.float64)  # not positive definite even after damping
    rounded, fell_back = rounding._gptq(levels, hessian, 0.01)
    nearest = levels.round().clamp(-127, 127)
    assert torch.equal(rounded[:2], nearest[:2]) and fell_back == 2 and none_fell_back == 0
    assert torch.equal(rounded[2:], alone) and not torch.equal(alone, nearest[2:])

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 1)).eval()
    with torch.no_grad():
        model[0].weight.fill_(1e30)  # the second layer's inputs overflow to inf
    with caplog.at_level("WARNING", logger="effnet.export"):
        copied = gptq_round(model, np.ones((2, 3, 8, 8), np.float32), progress=False)
    assert "1 of 2 layers rounded (in part) to nearest" in caplog.text
    assert torch.isfinite(copied[1].weight).all()
