"""Quantization-aware fine-tuning (`QuantizationConfig(finetune_steps=...)`): the PyTorch simulation computes
what the exported int8 file computes, and fine-tuning through it brings the file closer to the original
float model than post-training quantization does."""

import copy

import numpy as np
import pytest
import torch

from effnet import runtime
from effnet.export import QuantizationConfig, export_onnx, export_tflite
from effnet.export.checks import amplifying_channels
from effnet.export.qat import QuantizationSimulation, quantization_finetune

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.mark.slow
def test_the_simulation_computes_what_the_int8_file_computes(
    gdc_embedder, photo_arrays, tmp_path, mean_cosine, embed
):
    calibration, held_out = photo_arrays
    plain = export_onnx(
        gdc_embedder,
        tmp_path / "plain.onnx",
        QuantizationConfig("int8", calibration, 96, bias_correction=False, weight_rounding="nearest"),
    )
    from_file = runtime.load(plain).predict_batch(held_out)
    simulated = copy.deepcopy(gdc_embedder)
    simulation = QuantizationSimulation(simulated, portable=True)  # the default int8 .onnx weight grid
    simulation.calibrate(torch.from_numpy(calibration), 32)
    from_simulation = embed(simulated, held_out)
    float_outputs = embed(gdc_embedder, held_out)
    # the file is far from float here (an untrained head's large BatchNorm gains) and close to the simulation
    file_loss, simulation_miss = (
        1 - mean_cosine(from_file, float_outputs),
        1 - mean_cosine(from_file, from_simulation),
    )
    assert file_loss > 0.05
    assert simulation_miss < 0.1 * file_loss
    # removing the simulation leaves the plain float network, weights untouched
    simulation.remove()
    assert not any(hasattr(module, "parametrizations") for module in simulated.modules())
    np.testing.assert_array_equal(embed(simulated, held_out), float_outputs)


@pytest.mark.slow
def test_finetuned_int8_file_is_closer_to_the_original_than_post_training_quantization(
    gdc_embedder, photo_arrays, tmp_path, caplog, mean_cosine, embed
):
    calibration, held_out = photo_arrays
    before = copy.deepcopy(gdc_embedder.state_dict())
    # 8-bit weights everywhere: fine-tuning against nearest-rounded post-training quantization (a portable
    # file's 7-bit weights get GPTQ by default instead, which tests/export/test_rounding.py covers)
    vnni = {"int8_format": "vnni", "weight_rounding": "nearest"}
    configs = {
        "plain": QuantizationConfig("int8", calibration, 96, bias_correction=False, **vnni),
        "corrected": QuantizationConfig("int8", calibration, 96, **vnni),
        "finetuned": QuantizationConfig("int8", calibration, 96, finetune_steps=60, int8_format="vnni"),
    }
    reference = embed(gdc_embedder, held_out)
    similarity, warnings = {}, {}
    for name, config in configs.items():
        caplog.clear()
        with caplog.at_level("WARNING", logger="effnet.export"):
            written = export_onnx(gdc_embedder, tmp_path / f"{name}.onnx", config)
        similarity[name] = mean_cosine(runtime.load(written).predict_batch(held_out), reference)
        warnings[name] = caplog.text
    print(f"int8 .onnx, mean cosine to float: {similarity}")
    # on photo_arrays of other photos than the ones it was fine-tuned on
    assert similarity["finetuned"] > max(similarity["plain"], similarity["corrected"]) + 0.005, similarity
    # below 0.99 the export warns, and suggests fine-tuning only where it was not done
    assert "finetune_steps=300" in warnings["plain"]
    # and names the head's near-constant channels this fixture has (statistics from 96 images)
    amplifying, channels, _ = amplifying_channels(gdc_embedder)
    assert amplifying > 0 and f"{amplifying} of the {channels} channels" in warnings["plain"]
    assert "mean cosine similarity" in warnings["finetuned"] and "finetune_steps" not in warnings["finetuned"]
    # the caller's model is not fine-tuned: the export worked on a copy
    for name, tensor in gdc_embedder.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    # the file's check compares it with the original model: its cosine is what the user gets
    assert written.check.mean_cosine == pytest.approx(
        mean_cosine(
            runtime.load(written).predict_batch(calibration[:64]), embed(gdc_embedder, calibration[:64])
        ),
        abs=1e-4,
    )


@pytest.mark.slow
def test_finetuned_tflite_file_is_closer_to_the_original(
    gdc_embedder, photo_arrays, gdc_int8_tflite, tmp_path, mean_cosine, embed
):
    calibration, held_out = photo_arrays
    reference = embed(gdc_embedder, held_out)
    # post-training quantization (0 steps: nearest rounding, no bias correction) against 60 steps
    config = QuantizationConfig("int8", calibration, 96, bias_correction=False, finetune_steps=60)
    files = {0: gdc_int8_tflite, 60: export_tflite(gdc_embedder, tmp_path / "steps60.tflite", config)}
    similarity = {
        steps: mean_cosine(runtime.load(written).predict_batch(held_out), reference)
        for steps, written in files.items()
    }
    print(f"int8 .tflite, mean cosine to float by fine-tuning steps: {similarity}")
    assert similarity[60] > similarity[0] + 0.005, similarity


def test_finetuning_a_classifier_distills_its_logits(small_model, small_images, embed):
    """Any network: a classifier's fine-tuning matches its class probabilities (KL divergence)."""
    calibration = small_images[:16]
    with torch.no_grad():  # as an export called from inference code: the fine-tuning still has gradients
        tuned = quantization_finetune(small_model, calibration, steps=2, progress=False)
    assert tuned is not small_model
    assert not any(hasattr(module, "parametrizations") for module in tuned.modules())
    changed = [
        name
        for name, tensor in tuned.state_dict().items()
        if not torch.equal(tensor, small_model.state_dict()[name])
    ]
    assert changed and not any("running_" in name for name in changed)  # BatchNorm statistics stay frozen
    agreement = embed(tuned, calibration).argmax(1) == embed(small_model, calibration).argmax(1)
    assert agreement.mean() >= 0.9


@pytest.mark.slow
def test_one_model_to_several_files_is_fine_tuned_once(gdc_embedder, photo_arrays, tmp_path, monkeypatch):
    from effnet.export import qat

    calls = []
    finetune = qat.quantization_finetune
    monkeypatch.setattr(qat, "quantization_finetune", lambda *a, **k: calls.append(a[2]) or finetune(*a, **k))
    calibration = photo_arrays[0][:32]
    for name, steps in (("a", 2), ("b", 2), ("c", 3)):
        export_onnx(
            gdc_embedder,
            tmp_path / f"{name}.onnx",
            QuantizationConfig("int8", calibration, 32, finetune_steps=steps),
        )
    assert calls == [2, 3]  # the second file reused the first fine-tuning; other settings fine-tune again
    first, second = (
        runtime.load(tmp_path / f"{name}.onnx").predict_batch(photo_arrays[1][:4]) for name in "ab"
    )
    np.testing.assert_array_equal(first, second)
