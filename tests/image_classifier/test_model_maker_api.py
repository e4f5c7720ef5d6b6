"""The parts of TFLite Model Maker's API its tutorial uses that effnet answers differently: model.summary(),
ExportFormat members effnet does not write, TF Hub arguments, misspelled export() arguments."""

import pytest
from tiny_run import LABELS, save_tiny_run

from effnet import image_classifier
from effnet.config import ExportFormat
from effnet.image_classifier import DataLoader, ModelSpec
from effnet.profiling import count_params


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A trained-looking classifier in a fraction of a second (tests/fixtures/tiny_run.py)."""
    return image_classifier.load(save_tiny_run(tmp_path_factory.mktemp("run") / "run"))


def test_summary_lists_stages_shapes_and_params(classifier, capsys):
    classifier.summary()
    out = capsys.readouterr().out
    total = count_params(classifier.network)
    head = count_params(classifier.network.classifier)
    assert out.startswith('Model: "mobilenet_v1_025", 3 classes, input 3x32x32')
    assert "stages.0" in out and "classifier" in out and "256x1x1" in out  # rows, output shapes
    assert f"Total params: {total:,}" in out
    assert f"Trainable params: {head:,}" in out  # a frozen backbone trains the head only
    assert f"Non-trainable params: {total - head:,}" in out


def test_summary_by_block_has_more_rows(classifier):
    lines = {depth: [] for depth in (2, 3)}
    for depth, rows in lines.items():
        classifier.summary(depth=depth, print_fn=rows.append)
    assert len(lines[3][1].splitlines()) > len(lines[2][1].splitlines())


@pytest.mark.parametrize(
    ("export_format", "instead"),
    [(ExportFormat.TFJS, "use ExportFormat.ONNX"), (ExportFormat.VOCAB, "use ExportFormat.LABEL")],
)
def test_model_maker_formats_effnet_does_not_write_say_what_to_use(
    classifier, tmp_path, export_format, instead
):
    with pytest.raises(ValueError, match="not supported") as error:
        classifier.export(tmp_path, export_format=export_format)
    assert instead in str(error.value) and "\n" not in str(error.value)
    assert not any(tmp_path.iterdir())


def test_every_model_maker_export_format_is_named():
    for name in ("TFLITE", "SAVED_MODEL", "LABEL", "VOCAB", "TFJS"):
        assert isinstance(getattr(ExportFormat, name), str)


def test_misspelled_export_argument_names_the_closest_one(classifier, tmp_path):
    expected = "unknown keyword argument 'quantisation_config'; did you mean 'quantization_config'"
    with pytest.raises(TypeError, match=expected):
        classifier.export(tmp_path, quantisation_config=None)
    with pytest.raises(TypeError, match="unknown keyword argument 'colour'; it takes export_dir, "):
        classifier.export(tmp_path, colour="red")


def test_model_maker_export_options_that_match_effnet_are_accepted(classifier, tmp_path):
    written = classifier.export(
        tmp_path,
        export_format=ExportFormat.LABEL,
        with_metadata=True,
        export_metadata_json_file=False,
        tfjs_folder_name="tfjs",
        vocab_filename="vocab.txt",
    )
    assert written["label"].read_text().split() == LABELS
    with pytest.raises(ValueError, match="with_metadata=False is not supported"):
        classifier.export(tmp_path, export_format=ExportFormat.LABEL, with_metadata=False)


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("https://tfhub.dev/tensorflow/efficientnet/lite2/feature-vector/2", "efficientnet_lite2"),
        ("https://tfhub.dev/google/tf2-preview/mobilenet_v2/feature_vector/4", "mobilenet_v2"),
        ("https://example.com/my/module/1", "efficientnet_lite0"),
    ],
)
def test_tf_hub_model_spec_says_which_name_to_use(uri, name):
    with pytest.raises(ValueError, match="effnet does not use TF Hub") as error:
        ModelSpec(uri=uri)
    assert f"model_spec={name!r}" in str(error.value)
    with pytest.raises(ValueError, match="effnet does not use TF Hub"):
        ModelSpec(uri)


def test_use_hub_library_says_tf_hub_is_not_used(tmp_path):
    data = DataLoader.from_samples([str(tmp_path / "a.png")], [0], ["a"])
    with pytest.raises(ValueError, match="use_hub_library=True: effnet does not use TF Hub") as error:
        image_classifier.create(data, model_spec="efficientnet_lite0", use_hub_library=True)
    assert "model_spec='efficientnet_lite0'" in str(error.value)


def test_model_spec_needs_a_name():
    with pytest.raises(TypeError, match="ModelSpec needs a model name"):
        ModelSpec()


def test_saved_model_export_says_it_wrote_effnet_s_own_folder(classifier, tmp_path, capsys):
    written = classifier.export(tmp_path, export_format=ExportFormat.SAVED_MODEL)
    [note] = capsys.readouterr().err.strip().splitlines()
    folder = tmp_path / "saved_model"
    assert written == {"checkpoint": folder} and (folder / "model.safetensors").is_file()
    assert note.startswith(f"effnet: ExportFormat.SAVED_MODEL wrote {folder}/ as effnet's own run folder")
    assert "not a TensorFlow SavedModel" in note and f"image_classifier.load('{folder}')" in note
    classifier.export(tmp_path, export_format=ExportFormat.CHECKPOINT)  # effnet's own name: nothing to say
    assert capsys.readouterr().err == ""
