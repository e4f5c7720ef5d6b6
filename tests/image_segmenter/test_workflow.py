"""image_segmenter on the generated set: training lowers the loss and beats the untrained model; evaluate,
save / load, the report, the errors."""

import numpy as np
import pytest

from effnet import image_segmenter


def test_training_learns(trained, seg_data):
    train, test = seg_data
    history = trained.history
    assert len(history) == 10 and history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    untrained = image_segmenter.create(train, do_train=False, input_size=64)
    before, after = untrained.evaluate(test), trained.evaluate(test)
    assert after["mIoU"] > before["mIoU"] + 0.15 and after["mIoU"] > 0.3
    assert after["pixel_accuracy"] > 0.8
    assert set(after) == {"mIoU", "pixel_accuracy"} | {f"IoU/{name}" for name in train.label_names}
    masks = trained.segment(test)
    assert masks[0].shape == (96, 96) and masks[0].dtype == np.uint8  # the image's own size


def test_frozen_backbone_stays_and_fine_tuning_moves_it(seg_data, one_torch_thread):
    train, _ = seg_data
    start = image_segmenter.create(train, do_train=False, input_size=64).network.backbone.state_dict()
    frozen = image_segmenter.create(train, epochs=1, input_size=64)
    for key, value in frozen.network.backbone.state_dict().items():
        assert (value == start[key]).all(), key
    tuned = image_segmenter.create(
        train, "deeplabv3_mobilenet_v2", epochs=2, input_size=64, train_whole_model=True
    )
    assert tuned.history[-1]["train_loss"] < tuned.history[0]["train_loss"]
    other = image_segmenter.create(train, "deeplabv3_mobilenet_v2", do_train=False, input_size=64)
    moved = tuned.network.backbone.stages[3][0].dw.conv.weight
    assert not np.allclose(moved.detach(), other.network.backbone.stages[3][0].dw.conv.weight.detach())


def test_save_load_and_report(trained, seg_data, tmp_path):
    _, test = seg_data
    trained.save(tmp_path / "run")
    loaded = image_segmenter.load(tmp_path / "run")
    assert loaded.label_names == trained.label_names and loaded.network.spec == trained.network.spec
    assert loaded.evaluate(test) == trained.evaluate(test)
    _, report = loaded.write_report(tmp_path / "run", test, images=2)
    assert report.name == "report.html" and "IoU per class" in report.read_text()
    assert (tmp_path / "run" / "overlays.png").stat().st_size > 10_000
    (tmp_path / "run" / "config.json").write_text("{")
    with pytest.raises(ValueError, match=r"config\.json"):
        image_segmenter.load(tmp_path / "run")


def test_a_custom_spec_trains_saves_and_loads(seg_data, tmp_path, one_torch_thread):
    from dataclasses import replace

    from effnet.models.segmentation import get_segmenter_spec

    train, test = seg_data
    atrous = replace(get_segmenter_spec("deeplabv3_mobilenet_v2"), atrous_rates=(2, 4), head_channels=64)
    model = image_segmenter.create(train, atrous, epochs=2, input_size=64, model_dir=tmp_path / "run")
    assert len(model.network.head.aspp.branches) == 3  # the 1x1 branch and two atrous 3x3 ones
    loaded = image_segmenter.load(tmp_path / "run")
    assert loaded.network.spec == atrous
    assert loaded.evaluate(test)["mIoU"] == model.evaluate(test)["mIoU"]


def test_bad_arguments_say_what_to_do(seg_data):
    train, test = seg_data
    with pytest.raises(TypeError, match=r"must be an image_segmenter\.DataLoader"):
        image_segmenter.create([1, 2, 3])
    with pytest.raises(TypeError, match=r"unknown arguments \['learning_rat'\]"):
        image_segmenter.create(train, learning_rat=0.1)
    with pytest.raises(ValueError, match="unknown segmenter 'lraspp_lite0'"):
        image_segmenter.create(train, "lraspp_lite0")
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        image_segmenter.create(train, output_stride=4)
    other = type(test)(test.samples, [*test.label_names[:-1], "person"])
    with pytest.raises(ValueError, match="differ from the model's"):
        image_segmenter.create(train, do_train=False, input_size=64).evaluate(other)
