"""The pieces the detector and the segmenter share in `effnet.training`: settings resolution (`DenseHParams`,
`resolve_hparams`), what identifies a run's data (`content_id`) and the checks of ``create()``'s data."""

from dataclasses import dataclass

import pytest

from effnet.training.dense_hparams import FINE_TUNING_EPOCHS, FROZEN_EPOCHS, DenseHParams, resolve_hparams
from effnet.training.dense_task import check_training_data, content_id


@dataclass
class TaskHParams(DenseHParams):
    learning_rate: float = 0.5
    extra: int = 3


def test_resolve_hparams_merges_base_given_and_keyword_settings():
    base = TaskHParams(seed=7, extra=4)
    hp = resolve_hparams(
        TaskHParams, base, {"epochs": None, "batch_size": 4}, {"extra": 5}, True, "TaskHParams"
    )
    assert isinstance(hp, TaskHParams)
    assert (hp.seed, hp.batch_size, hp.extra, hp.learning_rate) == (7, 4, 5, 0.5)
    assert hp.train_whole_model and hp.epochs == FINE_TUNING_EPOCHS  # None resolved by the mode


def test_resolve_hparams_refuses_unknown_arguments_naming_the_settings_class():
    with pytest.raises(TypeError, match=r"unknown arguments \['colour'\]; see my.TaskHParams"):
        resolve_hparams(TaskHParams, None, {}, {"colour": 1}, False, "my.TaskHParams")


def test_resolve_hparams_validates_before_resolving():
    assert resolve_hparams(TaskHParams, None, {}, {}, False, "x").epochs == FROZEN_EPOCHS
    with pytest.raises(ValueError, match="learning_rate"):
        resolve_hparams(TaskHParams, None, {}, {"learning_rate": 0}, False, "x")


def test_from_dict_ignores_fields_a_saved_run_has_that_the_class_has_not():
    hp = TaskHParams.from_dict({**TaskHParams(extra=9).to_dict(), "retired_setting": 1})
    assert hp == TaskHParams(extra=9)


class Sample:
    def __init__(self, name: str) -> None:
        self.name = name


def test_content_id_depends_on_every_sample_and_its_order():
    samples = [Sample("a"), Sample("b")]
    identity = lambda sample: [sample.name.encode()]  # noqa: E731
    first = content_id(samples, identity)
    assert first == content_id([Sample("a"), Sample("b")], identity) and len(first) == 16
    assert first != content_id(samples[::-1], identity)
    assert first != content_id(samples[:1], identity)


class Data:
    def __init__(self, size: int, labels: list[str]) -> None:
        self.samples, self.label_names = [None] * size, labels

    def __len__(self) -> int:
        return len(self.samples)


def test_check_training_data_names_the_argument_and_the_problem():
    def wrong(argument, data):
        return TypeError(f"{argument}: wrong data")

    with pytest.raises(TypeError, match="validation_data: wrong data"):
        check_training_data(Data(2, ["a"]), [1, 2], wrong, "look there")
    with pytest.raises(ValueError, match="other labels"):
        check_training_data(Data(2, ["a"]), Data(2, ["b"]), wrong, "look there")
    with pytest.raises(ValueError, match="holds no images; look there"):
        check_training_data(Data(0, ["a"]), None, wrong, "look there")
    check_training_data(Data(2, ["a"]), Data(1, ["a"]), wrong, "look there")


def test_holds_run_of_reads_the_format_of_a_finished_run(tmp_path):
    from effnet.training.run_folder import holds_run_of

    assert not holds_run_of(tmp_path, "effnet.image_segmenter/1")  # no config.json
    (tmp_path / "config.json").write_text('{"format": "effnet.image_segmenter/1"}')
    assert holds_run_of(tmp_path, "effnet.image_segmenter/1")
    assert not holds_run_of(tmp_path, "effnet.object_detector/1")
    (tmp_path / "config.json").write_text("[1, 2")  # damaged: not a run of any format
    assert not holds_run_of(tmp_path, "effnet.image_segmenter/1")
