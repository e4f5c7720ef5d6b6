"""`effnet bench --run RUN_DIR --data DIR`: the trained run's model, measured accuracy per format."""

import json
from pathlib import Path

import pytest

from effnet.bench import run_bench
from effnet.cli import main
from effnet.data import ImageDataset
from effnet.data.samples import write_digits_folder
from effnet.image_classifier import create
from effnet.image_classifier.model_spec import ModelSpec


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, one_torch_thread):
    """Lite0 (bundled pretrained backbone) with a linear head trained on 200 real digits at 64 px."""
    root = tmp_path_factory.mktemp("run")
    digits = write_digits_folder(root / "digits", limit=200)
    data = ImageDataset.from_folder(digits, seed=0)
    train, test = data.split(0.7, seed=0)
    spec = ModelSpec("efficientnet_lite0", input_image_shape=(64, 64))
    classifier = create(train, model_spec=spec, epochs=10, batch_size=32)
    run = classifier.save(root / "lite0-digits")
    (run / "splits.json").write_text(json.dumps({"train": train.paths}))
    test_folder = root / "test"
    for path, label in zip(test.paths, test.labels, strict=True):
        target = test_folder / test.index_to_label[label] / path.split("/")[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(path).read_bytes())
    return classifier, run, test_folder


def test_accuracy_of_each_format_on_the_folder(trained_run, tmp_path):
    classifier, run, test_folder = trained_run
    _, expected = classifier.evaluate(ImageDataset.from_folder(test_folder, shuffle=False))
    assert expected > 0.5  # a trained head, not chance (0.1)
    rows = run_bench(
        run_dir=run, data_dir=test_folder, formats=["torch", "onnx"], runs=3, warmup=1, progress=False
    )
    accuracy = {r["format"]: r["accuracy"] for r in rows}
    assert accuracy["torch"] == pytest.approx(expected, abs=1e-6)
    assert accuracy["onnx"] == pytest.approx(expected, abs=0.02)
    assert (
        rows[0]["model"] == "efficientnet_lite0 (lite0-digits)" and rows[0]["family"] == "efficientnet_lite"
    )
    assert rows[0]["resolution"] == 64 and rows[0]["top1_reference"] is None


def test_data_with_other_classes_is_refused(trained_run, tmp_path, capsys):
    _, run, test_folder = trained_run
    digit = next(test_folder.glob("*/*.png"))
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(digit.read_bytes())
    assert main(["bench", "--run", str(run), "--data", str(tmp_path), "--formats", "torch"]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "classes" in err


def test_run_and_models_together_are_refused(trained_run, capsys):
    _, run, _ = trained_run
    assert main(["bench", "--run", str(run), "--models", "lite0"]) == 2
    assert "--run" in capsys.readouterr().err
