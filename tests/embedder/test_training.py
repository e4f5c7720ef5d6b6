"""Embedder training on real images (digits, 4 identities x 16, 32 px): margin warm-up follows its schedule,
a run stopped mid-epoch resumes to the weights of an uninterrupted run, gradient accumulation and bf16 use
the classifier's machinery, and `effnet embed-train` exposes it all."""

import json
import shutil

import numpy as np
import pytest
import torch

import effnet
from effnet import embedder
from effnet.cli import main
from effnet.training import RunOptions

STEPS_PER_EPOCH = 4  # 64 training images, batch 16


def settings(held, **extra):
    base = dict(
        backbone="efficientnet_lite0", head="gdc", loss="arcface", embedding_dim=32, input_size=32, epochs=2,
        batch_size=16, validation_data=held, val_pairs=40, num_workers=0, scale=64.0, clip_grad_norm=5.0,
        margin_warmup_epochs=1.0, crop_scale=0.8,
    )  # fmt: skip
    return {**base, **extra}


def weights(model) -> dict:
    return {k: v.clone() for k, v in model.network.state_dict().items()}


def max_difference(a: dict, b: dict) -> float:
    pairs = zip(a.values(), b.values(), strict=True)
    return max((x.double() - y.double()).abs().max().item() for x, y in pairs)


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory, one_torch_thread):
    _, train, held = digits
    run = tmp_path_factory.mktemp("full")
    options = RunOptions(checkpoint_every=1)
    return embedder.create(train, model_dir=run, run_options=options, **settings(held))


def test_margin_warmup_follows_the_schedule_in_training(uninterrupted):
    history = uninterrupted.history
    # one epoch of warm-up over 4 steps: the epoch's last step (index 3) trains at 3/4 of the margin, the
    # second epoch at all of it
    assert [row["margin_fraction"] for row in history] == [0.75, 1.0]
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert history[1]["train_accuracy"] > 0.5  # 4 identities: it learns, s=64 does not blow up


def test_stopped_mid_epoch_resumes_to_the_same_weights(digits, uninterrupted, tmp_path):
    """Flips, crops, stochastic depth, margin warm-up and validation all in play; the run stops right after
    epoch 2, step 1, as SIGTERM would (`RunOptions.stop_after_step`: a checkpoint, then KeyboardInterrupt)."""
    _, train, held = digits
    options = RunOptions(checkpoint_every=1, keep_checkpoints=2)
    stopping = RunOptions(checkpoint_every=1, keep_checkpoints=2, stop_after_step=STEPS_PER_EPOCH + 1)
    with pytest.raises(KeyboardInterrupt):
        embedder.create(train, model_dir=tmp_path, run_options=stopping, **settings(held))
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*.pt"))
    assert kept[-1] == f"step-{STEPS_PER_EPOCH + 1:08d}.pt"  # epoch 2, step 1: mid-epoch
    assert not (tmp_path / "model.safetensors").exists()
    resumed = embedder.create(train, model_dir=tmp_path, run_options=options, **settings(held))
    assert max_difference(weights(resumed), weights(uninterrupted)) <= 1e-6
    assert [r["epoch"] for r in resumed.history] == [1, 2] and resumed.best_epoch == uninterrupted.best_epoch
    for a, b in zip(resumed.history, uninterrupted.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_accuracy"] == b["val_accuracy"]


def test_accumulation_equals_the_whole_batch_and_bf16_trains(digits, one_torch_thread, monkeypatch):
    """Two micro-batches of 8 give the gradient of the batch of 16 (BatchNorm statistics frozen, no
    stochastic depth: otherwise micro-batches legitimately differ)."""
    train = digits[1]
    fixed = settings(None, freeze_bn="all", drop_path_rate=0.0, epochs=1, crop_scale=None)
    whole = embedder.create(train, **fixed)
    split = embedder.create(train, run_options=RunOptions(accumulate=2), **fixed)
    assert max_difference(weights(whole), weights(split)) < 1e-5  # measured 1.2e-7
    torch.manual_seed(0)  # the initial weights, as create() draws them: training moved them
    start = effnet.create_embedder("efficientnet_lite0", "gdc", 32, 32, pretrained=True, drop_path_rate=0.0)
    assert max_difference(weights(whole), start.state_dict()) > 1e-3
    monkeypatch.setenv("EFFNET_CPU_BF16", "1")  # numerics, not speed: also on a CPU without bf16 instructions
    bf16 = embedder.create(train, run_options=RunOptions(precision="bf16"), **fixed)
    assert np.isfinite(bf16.history[0]["train_loss"])
    assert 1e-6 < max_difference(weights(bf16), weights(whole)) < 0.05  # autocast on: close, not equal
    with pytest.raises(ValueError, match="accumulate"):
        embedder.create(train, run_options=RunOptions(accumulate=0), **fixed)


def test_options_are_validated(digits):
    train = digits[1]
    with pytest.raises(ValueError, match="margin_warmup_epochs must be in"):
        embedder.create(train, epochs=2, margin_warmup_epochs=3)
    with pytest.raises(ValueError, match="not softmax"):
        embedder.create(train, loss="softmax", easy_margin=True)
    with pytest.raises(ValueError, match="crop_scale"):
        embedder.create(train, crop_scale=1.5)
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0, got nan"):
        embedder.create(train, learning_rate=float("nan"))
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1, got 1\.5"):
        embedder.create(train, epochs=1.5)


def test_cli_embed_train_with_run_options_and_resume(digits, tmp_path, capsys, one_torch_thread):
    _, train, held = digits
    data = tmp_path / "identities"
    for dataset in (train, held):
        for path, label in zip(dataset.paths, dataset.labels, strict=True):
            folder = data / f"{dataset.index_to_label[label]}"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder)
    run = tmp_path / "run"
    args = ["embed-train", str(data), "--out", str(run), "--input-size", "32", "--embedding-dim", "32"]
    args += ["--epochs", "2", "--batch-size", "16", "--workers", "0", "--val-identities", "0.4"]
    args += ["--scale", "64", "--margin-warmup-epochs", "1", "--easy-margin", "--crop-scale", "0.8"]
    args += ["--accumulate", "2", "--checkpoint-every", "3", "--keep-checkpoints", "5", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train_identities"] == 4 and 0 <= result["verification"]["accuracy"] <= 1
    steps = sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("step-*.pt"))
    assert steps == [3, 4, 6, 8]  # every 3 steps mid-epoch, and at each epoch's end
    config = json.loads((run / "config.json").read_text())["hparams"]
    assert config["easy_margin"] is True and config["margin_warmup_epochs"] == 1.0
    assert config["crop_scale"] == 0.8
    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # nothing left to train: loads the last checkpoint
    again = json.loads(capsys.readouterr().out)
    assert again["verification"]["accuracy"] == result["verification"]["accuracy"]


def test_cli_export_writes_an_embedder_run(digits, uninterrupted, tmp_path, capsys, one_torch_thread):
    pytest.importorskip("onnxruntime")
    from effnet import runtime

    _, train, _ = digits
    run, identities, out = uninterrupted.save(tmp_path / "run"), tmp_path / "identities", tmp_path / "export"
    for path, label in zip(train.paths, train.labels, strict=True):
        folder = identities / train.index_to_label[label]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder)
    args = ["export", str(run), "--format", "onnx", "--quantize", "int8", "--out", str(out)]
    assert main(args) == 2  # nothing to calibrate on: an embedder run keeps no image list
    assert "pass --calibration IDENTITY_FOLDER" in capsys.readouterr().err
    assert main([*args, "--calibration", str(identities), "--finetune-steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "onnx (int8)" in printed and "cosine" in printed
    predictor = runtime.load(out / "model.onnx")
    assert predictor.metadata.quantization == "int8"
    assert predictor.predict_batch(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 32)


def test_cli_export_rounds_an_embedder_by_gptq_unless_told_otherwise():
    """`effnet export` of an embedder run: GPTQ weight rounding by default (what keeps gdc / flatten int8
    files at 0.99 cosine), nearest with --finetune-steps or --weight-rounding nearest; a classifier run gets
    "auto" (GPTQ in a portable int8 .onnx file, nearest in .tflite)."""
    import argparse

    from effnet.cli.export import _configured
    from effnet.embedder.exporting import WEIGHT_ROUNDING
    from effnet.export import DEFAULT_QUANTIZATION_STEPS

    def rounding(default: str, **flags) -> str:
        args = {"quantize": "int8", "no_bias_correction": False, "finetune_steps": 0, "weight_rounding": None}
        args.update(int8_format="portable", calibration_images=DEFAULT_QUANTIZATION_STEPS)
        config = _configured(argparse.Namespace(**{**args, **flags}), [0], default_rounding=default)
        return config.weight_rounding

    assert WEIGHT_ROUNDING == "gptq" and rounding(WEIGHT_ROUNDING) == "gptq"
    assert rounding(WEIGHT_ROUNDING, weight_rounding="nearest") == "nearest"
    assert rounding(WEIGHT_ROUNDING, finetune_steps=5) == "nearest"
    assert rounding("nearest") == "nearest" and rounding("nearest", weight_rounding="gptq") == "gptq"
    assert rounding("auto") == "auto" and rounding("auto", int8_format="vnni") == "auto"
