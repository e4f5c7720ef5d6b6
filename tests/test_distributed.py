"""Scale-out training: torchrun/DDP equals one process, exact resume after a stop mid-epoch, shards, bf16."""

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from effnet.data.samples import write_digits_folder
from effnet.distributed import GlobalBatchSampler

SRC = str(Path(__file__).resolve().parents[1] / "src")
# tiny and deterministic: 32 px, no dropout / stochastic depth (they draw per rank), frozen BatchNorm
TINY = ["--fine-tune", "--image-size", "32", "--val-split", "0", "--test-split", "0", "--workers", "0"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _effnet(*args: str, torchrun: int = 0) -> list[str]:
    launcher = [sys.executable]
    if torchrun:
        launcher += ["-m", "torch.distributed.run", "--nproc-per-node", str(torchrun)]
        launcher += ["--master-port", str(_free_port())]
    return [*launcher, "-m", "effnet", *args]


def _run(command: list[str], timeout: float = 120) -> None:
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp("digits"), limit=64)


def test_global_batch_sampler_shares_each_batch_without_duplicates():
    ranks = [GlobalBatchSampler(70, 16, rank=r, world_size=2, accumulate=2, seed=3) for r in range(2)]
    single = GlobalBatchSampler(70, 16, seed=3)
    for sampler in (*ranks, single):
        sampler.set_epoch(5)
    assert len(ranks[0]) == len(single) == 5  # 4 full batches + a last one of 6 >= 2 ranks x 2 micro-steps
    seen = [i for r in ranks for _, _, indices, _ in r for i in indices.tolist()]
    assert sorted(seen) == list(range(70))  # every sample once, on exactly one rank
    for step, (_, _, batch, count) in enumerate(single):  # the same global batches as one process
        shared = [i for r in ranks for s, _, ix, _ in r if s == step for i in ix.tolist()]
        assert sorted(shared) == sorted(batch.tolist()) and count == len(batch)
    ranks[0].set_epoch(6)
    assert [ix.tolist() for *_, ix, _ in ranks[0]] != [ix.tolist() for *_, ix, _ in ranks[1]]
    with pytest.raises(ValueError, match="divisible"):
        GlobalBatchSampler(70, 10, world_size=4)


@pytest.mark.slow  # several effnet processes
def test_torchrun_two_processes_match_one_process(digits, tmp_path):
    """DDP on 2 CPU processes (gloo) with the same global batch ends with the single process's weights."""
    args = [str(digits), *TINY, "--epochs", "1", "--batch-size", "16", "--freeze-bn", "yes"]
    args += ["--dropout-rate", "0", "--drop-path-rate", "0", "--no-probe"]
    _run(_effnet("train", *args, "--out", str(tmp_path / "ddp"), torchrun=2))
    _run(_effnet("train", *args, "--out", str(tmp_path / "one")))
    start = load_file(tmp_path / "one" / "model.safetensors")
    assert _max_diff(tmp_path / "ddp", tmp_path / "one") < 1e-4  # float summation order differs
    from effnet import create_model

    initial = create_model("efficientnet_lite0", pretrained=True).state_dict()
    assert not torch.equal(start["stem.conv.weight"], initial["stem.conv.weight"])  # it did train


@pytest.mark.slow  # several effnet processes
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(digits, tmp_path):
    """A run stopped mid-epoch, deterministically: EFFNET_STOP_AFTER_STEP=6 stops it after step 6 of 8 (epoch
    2, step 2) as SIGTERM would (a step checkpoint, exit 130), whatever the machine's speed; --resume ends
    bitwise where an uninterrupted run ends (augmentation, dropout and stochastic depth on: all drawn from
    derived seeds)."""
    args = [str(digits), *TINY, "--epochs", "2", "--batch-size", "16", "--augment", "--no-probe"]
    args += ["--checkpoint-every", "1", "--keep-checkpoints", "3"]
    _run(_effnet("train", *args, "--out", str(tmp_path / "full")))

    cut = tmp_path / "cut"
    stopped = subprocess.run(
        _effnet("train", *args, "--out", str(cut)),
        env={**_env(), "EFFNET_STOP_AFTER_STEP": "6"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert "continue with --resume" in stopped.stderr
    assert not (cut / "model.safetensors").exists()
    steps = sorted(int(p.stem.split("-")[1]) for p in (cut / "checkpoints").glob("step-*.pt"))
    assert steps == [4, 5, 6]  # 4 steps per epoch; only the newest 3 are kept
    _run(_effnet("train", *args, "--out", str(cut), "--resume"))
    assert _max_diff(cut, tmp_path / "full") <= 1e-6


def test_shards_split_across_ranks_and_workers_without_duplicates(digits, tmp_path):
    from effnet.data.shards import ShardDataset, pack

    for shard_size, striding in ((6, False), (40, True)):  # 11 shards >= 4 units; 2 shards < 4 units
        out = tmp_path / f"shards-{shard_size}"
        pack(digits, out, shard_size=shard_size, progress=False)
        data = ShardDataset(out)
        assert len(data) == 64 and len(data.shards) == math.ceil(64 / shard_size)
        units = [(rank, worker) for rank in range(2) for worker in range(2)]
        seen = []
        for rank, worker in units:
            unit = rank * 2 + worker
            assert data.unit_plan(unit, 4)[1] is striding
            seen += [index for _, _, index in data.samples(unit, 4, epoch=1, seed=0)]
        assert sorted(seen) == list(range(64))  # the union is the dataset, nothing twice
        labels = {index: label for _, label, index in data.samples(0, 1, epoch=0, seed=0, shuffle=False)}
        assert (
            np.bincount(list(labels.values())).tolist()
            == np.bincount([int(Path(p).parent.name) for p in _paths(digits)]).tolist()
        )


def _paths(folder):
    return sorted(str(p) for p in Path(folder).glob("*/*.png"))


def test_shard_batches_with_workers_resume_in_the_same_order(digits, tmp_path):
    from effnet.data import EvalTransform
    from effnet.data.shards import ShardDataset, pack
    from effnet.preprocessing import Preprocessing

    pack(digits, tmp_path, shard_size=5, progress=False)
    data = ShardDataset(tmp_path)
    data.num_workers = 2
    transform = EvalTransform(Preprocessing(input_size=(8, 8)))
    batches = data.batches(8, rank=1, world_size=2, accumulate=1, seed=0)
    full = [(step, labels.tolist()) for step, _, _, labels, _ in batches.epoch(2, transform)]
    assert len(full) == batches.steps_per_epoch > 0
    resumed = [(step, labels.tolist()) for step, _, _, labels, _ in batches.epoch(2, transform, start_step=3)]
    assert resumed == full[3:]


def test_pack_cli_and_training_on_shards(digits, tmp_path, capsys):
    from effnet.cli import main

    shards = tmp_path / "shards"
    assert main(["data", "pack", str(digits), str(shards), "--shard-size", "16", "--val-split", "0.25"]) == 0
    printed = capsys.readouterr().out  # stratified: each class rounds its quarter
    assert "train 49 images in 4 shards, validation 15 images in 1 shards" in printed
    out = tmp_path / "run"
    code = main(["train", str(shards), "--out", str(out), *TINY[:3], "--epochs", "1", "--batch-size", "8"])
    assert code == 0
    assert "validation accuracy" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file()


def test_bf16_autocast_trains_on_cpu_and_fp16_needs_cuda(digits, tmp_path, monkeypatch):
    from effnet import image_classifier
    from effnet.image_classifier import DataLoader, ModelSpec
    from effnet.training import RunOptions

    data = DataLoader.from_folder(digits)
    spec = ModelSpec("efficientnet_lite0", input_image_shape=(32, 32))
    common = {
        "train_whole_model": True,
        "epochs": 1,
        "batch_size": 16,
        "probe_first": False,
        "num_workers": 0,
    }
    monkeypatch.setenv("EFFNET_CPU_BF16", "1")  # numerics, not speed: also on a CPU without bf16 instructions
    model = image_classifier.create(
        data, spec, run_options=RunOptions(precision="bf16", device="cpu"), **common
    )
    assert math.isfinite(model.history[0]["train_loss"]) and model.history[0]["train_loss"] > 0
    assert all(v.dtype == torch.float32 for v in model.network.state_dict().values() if v.is_floating_point())
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
            image_classifier.create(
                data, spec, run_options=RunOptions(precision="fp16", device="cpu"), **common
            )


@pytest.mark.slow  # several effnet processes
def test_embed_train_under_torchrun_matches_one_process(tmp_path):
    """embed-train: DDP over the network and the ArcFace centres on 2 CPU processes equals 1 process with
    the same global batch (all BatchNorm frozen; rank 0 validates on held-out identities)."""
    data = write_digits_folder(tmp_path / "digits", limit=120)
    args = [str(data), "--input-size", "32", "--embedding-dim", "32", "--epochs", "2", "--batch-size", "16"]
    args += ["--freeze-bn", "all", "--drop-path-rate", "0", "--workers", "0", "--val-identities", "0.2"]
    # s=16 and a small rate: at s=64 this tiny run is chaotic (loss 54 -> 39 -> 77) and amplifies float
    # rounding (batch 8 vs 16 kernels) to ~1e-3 in a dozen steps; the softmax loss matches to 3e-8 there
    args += ["--scale", "16", "--learning-rate", "0.001"]
    _run(_effnet("embed-train", *args, "--out", str(tmp_path / "ddp"), torchrun=2))
    _run(_effnet("embed-train", *args, "--out", str(tmp_path / "one")))
    assert _max_diff(tmp_path / "ddp", tmp_path / "one") < 1e-4  # float summation order differs
    import json

    ddp, one = (json.loads((tmp_path / run / "history.json").read_text()) for run in ("ddp", "one"))
    assert [e["epoch"] for e in ddp["epochs"]] == [1, 2] and ddp["best_epoch"] == one["best_epoch"]
    for a, b in zip(ddp["epochs"], one["epochs"], strict=True):  # all-reduced sums: the global batch's
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)
    assert (tmp_path / "ddp" / "metrics.json").is_file()  # rank 0 evaluated and wrote the run folder
    trained = load_file(tmp_path / "one" / "model.safetensors")
    from effnet import create_model

    initial = create_model("efficientnet_lite0", pretrained=True).state_dict()
    assert not torch.equal(trained["backbone.stem.conv.weight"], initial["stem.conv.weight"])  # it trained
