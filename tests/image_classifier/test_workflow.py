"""The Model Maker workflow end to end on real images (small sizes so it stays fast on CPU)."""

import pytest
import torch

from effnet import image_classifier
from effnet.image_classifier import DataLoader, HParams, ModelSpec, model_spec
from effnet.training import StepCheckpoints

# 32 px: the digits are 8x8 scans, and Lite0's pretrained features still separate them (~0.8 top-1 after 10
# epochs of the head); a quarter of 64 px's compute in every training and fine-tuning below
SMALL = ModelSpec("efficientnet_lite0", input_image_shape=(32, 32))


def weights(model):
    return {k: v.clone() for k, v in model.network.state_dict().items()}


def same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def splits(digits_folder):
    data = DataLoader.from_folder(digits_folder)
    return data.split(0.8)


def test_frozen_backbone_learns_digits(splits):
    train, test = splits
    model = image_classifier.create(train, model_spec=SMALL, epochs=10)
    loss, accuracy = model.evaluate(test)
    assert accuracy > 0.6 and loss < 2.0  # 10 classes: chance is 0.1
    assert model.network.preprocessing.input_size == (32, 32)
    assert len(model.history) == 10 and model.best_epoch == 10
    detailed = model.evaluate(test, detailed=True)
    assert detailed["accuracy"] == pytest.approx(accuracy)
    assert set(detailed["per_class"]) == set(train.index_to_label)
    assert sum(map(sum, detailed["confusion_matrix"])) == len(test)
    assert detailed["top_k_accuracy"]["5"] >= detailed["top_k_accuracy"]["1"]
    top = model.predict_top_k(test.paths[:3], k=2)
    assert len(top) == 3 and all(len(row) == 2 and row[0][1] >= row[1][1] for row in top)
    assert model.predict_top_k(test, k=1)[0][0][0] in train.index_to_label


def test_validation_keeps_the_best_epoch(splits):
    train, test = splits
    model = image_classifier.create(train, model_spec=SMALL, validation_data=test, epochs=6)
    accuracies = [row["val_accuracy"] for row in model.history]
    assert model.history[model.best_epoch - 1]["val_accuracy"] == max(accuracies)
    assert model.evaluate(test)[1] == pytest.approx(max(accuracies))


def test_reproducible_with_a_seed(splits):
    train, _ = splits
    a = weights(image_classifier.create(train, model_spec=SMALL, epochs=3, seed=1))
    b = weights(image_classifier.create(train, model_spec=SMALL, epochs=3, seed=1))
    c = weights(image_classifier.create(train, model_spec=SMALL, epochs=3, seed=2))
    assert same_weights(a, b)
    assert not same_weights(a, c)


class Interrupt(Exception):
    pass


def interrupt_after(monkeypatch, epochs: int):
    """Make the run die (like Ctrl-C) right after the checkpoint at the end of epoch ``epochs`` is written
    (the head's, or fine-tuning's: both mark it as the start of epoch ``epochs + 1``)."""
    from effnet.training import checkpoints

    real_save = checkpoints.save_torch

    def save_then_maybe_die(state, path):
        real_save(state, path)
        if (state["epoch"], state["step"]) == (epochs + 1, 0):
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_torch", save_then_maybe_die)


@pytest.mark.parametrize("fine_tune", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_resume_after_interruption_gives_the_same_result(splits, tmp_path, monkeypatch, fine_tune):
    train, test = splits
    train = train.split(0.3)[0] if fine_tune else train  # fine-tuning: keep it quick
    kwargs = {"model_spec": SMALL, "epochs": 3, "train_whole_model": fine_tune, "use_augmentation": fine_tune,
              "batch_size": 16, "validation_data": test if not fine_tune else None}  # fmt: skip
    uninterrupted = weights(image_classifier.create(train, model_dir=tmp_path / "full", **kwargs))

    with monkeypatch.context() as patch:
        interrupt_after(patch, epochs=2)
        with pytest.raises(KeyboardInterrupt):
            image_classifier.create(train, model_dir=tmp_path / "cut", **kwargs)
    written = StepCheckpoints(tmp_path / "cut", {}).paths()  # one checkpoint format, head or whole network
    assert written and written[-1].is_file()
    resumed = image_classifier.create(train, model_dir=tmp_path / "cut", **kwargs)
    assert same_weights(weights(resumed), uninterrupted)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]


def test_checkpoint_of_another_run_is_refused(splits, tmp_path):
    train, _ = splits
    image_classifier.create(train, model_spec=SMALL, epochs=1, model_dir=tmp_path)
    with pytest.raises(ValueError, match="belongs to another run"):
        image_classifier.create(train, model_spec=SMALL, epochs=2, model_dir=tmp_path)


@pytest.mark.slow
def test_fine_tuning_trains_the_whole_network(splits):
    train, _ = splits
    small = train.split(0.25)[0]
    model = image_classifier.create(
        small, model_spec=SMALL, train_whole_model=True, epochs=1, batch_size=16, use_augmentation=True
    )
    from effnet import create_model

    reference = create_model("efficientnet_lite0", pretrained=True)
    assert not torch.equal(model.network.stem.conv.weight, reference.stem.conv.weight)
    assert model.hparams.bn_frozen(pretrained=True)  # BatchNorm statistics stay the pretrained ones
    assert not model.hparams.bn_frozen(pretrained=False)
    assert torch.equal(model.network.stem.bn.running_mean, reference.stem.bn.running_mean)


@pytest.mark.slow
def test_save_and_load_round_trip(splits, tmp_path):
    train, test = splits
    model = image_classifier.create(train, model_spec=SMALL, epochs=2)
    model.save(tmp_path / "run")
    assert (tmp_path / "run" / "labels.txt").read_text().split() == train.index_to_label
    loaded = image_classifier.load(tmp_path / "run")
    assert loaded.index_to_label == model.index_to_label
    assert loaded.preprocessing == model.preprocessing and loaded.network.padding == "same"
    assert same_weights(weights(loaded), weights(model))
    assert loaded.evaluate(test) == pytest.approx(model.evaluate(test))
    with pytest.raises(FileNotFoundError, match="not a saved effnet classifier"):
        image_classifier.load(tmp_path)


def test_messy_real_folder(messy_folder):
    data = DataLoader.from_folder(messy_folder)
    assert data.index_to_label == ["cat", "coffee", "rocket"] and len(data) == 3 * 8 + 1
    # 64 px: at 32 px two of the 24 crops are still wrong after 5 epochs
    spec = ModelSpec("efficientnet_lite0", input_image_shape=(64, 64))
    model = image_classifier.create(data, model_spec=spec, epochs=5)
    _, accuracy = model.evaluate(data)
    assert accuracy == 1.0  # three very different photos, seen in training
    assert any("broken.jpg" in str(s.path) for s in data.skipped)


def test_model_maker_names_and_bad_arguments(splits):
    train, test = splits
    assert model_spec.get("mobilenet_v2").name == "mobilenet_v2_100"
    assert model_spec.get("efficientnet_lite4").name == "efficientnet_lite4"
    with pytest.raises(ValueError, match="resnet_50 is not part of effnet"):
        model_spec.get("resnet_50")
    with pytest.raises(TypeError, match=r"DataLoader\.from_folder"):
        image_classifier.create([1, 2, 3])
    with pytest.raises(TypeError, match="unknown arguments"):
        image_classifier.create(train, model_spec=SMALL, colour="red")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        image_classifier.create(train, model_spec=SMALL, epochs=0)
    other = DataLoader.from_samples(test.paths[:4], [0, 1, 0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="other classes"):
        image_classifier.create(train, model_spec=SMALL, validation_data=other)


def test_hparams_defaults_follow_model_maker():
    hp = HParams()
    assert (hp.batch_size, hp.learning_rate, hp.momentum, hp.dropout_rate, hp.label_smoothing) == (
        32, 0.005, 0.9, 0.2, 0.1,
    )  # fmt: skip
    assert hp.resolved(10).epochs == 50 and HParams(train_whole_model=True).resolved(10).epochs == 5
    assert HParams(train_whole_model=True).resolved(10).warmup_steps == 10
