"""A damaged run folder is one line naming the file and the fix, from the Python API and the CLI."""

import json

import pytest
from tiny_run import save_tiny_run

from effnet.cli import main
from effnet.image_classifier import load
from effnet.training import StepCheckpoints


@pytest.fixture
def run(tmp_path):
    return save_tiny_run(tmp_path / "run")


def test_an_intact_run_loads(run):
    assert load(run).index_to_label == ["cat", "dog", "zebra"]


@pytest.mark.parametrize("kept", [1000, -100])  # cut inside the header, or inside the tensors
def test_truncated_weights_name_the_file(run, capsys, kept):
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:kept])
    with pytest.raises(ValueError, match=f"{weights}: the file is truncated or corrupt"):
        load(run)
    assert main(["export", str(run), "--format", "onnx"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"effnet export: error: {weights}: the file is truncated or corrupt")
    assert len(error.strip().splitlines()) == 1


def test_config_with_more_classes_than_the_weights(run, capsys):
    config_path = run / "config.json"
    config = json.loads(config_path.read_text())
    config.update(num_classes=5, labels=["a", "b", "c", "d", "e"])
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError) as info:
        load(run)
    message = str(info.value)
    assert message.startswith(f"{run / 'model.safetensors'}: does not fit {config_path} (size mismatch for ")
    assert "restore both from one run or train again" in message and "\n" not in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "holds a JSON list, expected an object"),
        ('{"format": "effnet.embedder/1"}', "not an effnet image classifier (format 'effnet.embedder/1'"),
        ('{"format": "effnet.image_classifier/1"}', "not a valid effnet run config (no 'labels')"),
    ],
)
def test_broken_config_names_the_file(run, content, reason):
    (run / "config.json").write_text(content)
    with pytest.raises(ValueError) as info:
        load(run)
    assert str(info.value).startswith(f"{run / 'config.json'}: {reason}")


def test_missing_weights_say_what_to_do(run):
    (run / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors: missing; the run did not finish"):
        load(run)


@pytest.mark.parametrize("content", [b"\x80\x02garbage", b"", b"PK\x03\x04 a zip cut short"])
def test_corrupt_epoch_checkpoint_names_the_file(tmp_path, content):
    (tmp_path / "checkpoint.pt").write_bytes(content)
    with pytest.raises(ValueError, match=r"checkpoint\.pt: not a checkpoint effnet can read \(") as info:
        StepCheckpoints(tmp_path, {"run": 1}, legacy=True).load_latest()  # an older effnet's head checkpoint
    assert str(info.value).endswith("delete it (effnet train: --overwrite) to start the run over")
