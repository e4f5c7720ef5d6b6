import json

import numpy as np
import pytest

from effnet.cli import main


@pytest.fixture(scope="module")
def run(digits_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits-lite0"
    code = main(["train", str(digits_folder), "--out", str(out), "--image-size", "32", "--epochs", "8"])
    assert code == 0
    return out


def test_train_writes_a_complete_run(run, capsys):
    for name in (
        "model.safetensors",
        "labels.txt",
        "config.json",
        "metrics.json",
        "report.html",
        "splits.json",
    ):
        assert (run / name).is_file(), name
    assert (run / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_images"] == 30 and 0.3 < metrics["accuracy"] <= 1.0
    splits = json.loads((run / "splits.json").read_text())
    assert len(splits["train"]) + len(splits["validation"]) + len(splits["test"]) == 300
    assert not set(splits["train"]) & set(splits["test"])


def test_train_refuses_to_overwrite_and_resume_finishes(run, digits_folder, capsys):
    assert main(["train", str(digits_folder), "--out", str(run), "--image-size", "32", "--epochs", "8"]) == 2
    assert "--resume" in capsys.readouterr().err
    # resuming a finished run retrains nothing and reports the same metrics
    before = json.loads((run / "metrics.json").read_text())
    assert (
        main(
            [
                "train",
                str(digits_folder),
                "--out",
                str(run),
                "--image-size",
                "32",
                "--epochs",
                "8",
                "--resume",
            ]
        )
        == 0
    )
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == before["accuracy"]


def test_evaluate_run_folder(run, digits_folder, capsys):
    assert main(["evaluate", str(run), str(digits_folder), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["num_images"] == 300 and metrics["accuracy"] > 0.5


def test_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err
    (tmp_path / "one" / "only").mkdir(parents=True)
    assert main(["train", str(tmp_path / "one"), "--out", str(tmp_path / "out")]) == 2


def test_data_digits(tmp_path, capsys):
    assert main(["data", "digits", str(tmp_path / "d"), "--limit", "20"]) == 0
    assert len(list((tmp_path / "d").glob("*/*.png"))) == 20


# Fewer calibration images than the default make the int8 exports below seconds, not minutes (GPTQ, ORT's
# calibration and bias correction each run every calibration image through the network)
CALIBRATION_IMAGES = "16"


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """The run exported as int8 .tflite and .onnx with every default (bias correction included), once for
    the tests that read these files."""
    out = tmp_path_factory.mktemp("export")
    args = ["export", str(run), "--format", "tflite,onnx", "--calibration-images", CALIBRATION_IMAGES]
    assert main([*args, "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_export_then_evaluate_and_predict_the_files(run, exported, digits_folder, capsys):
    out = exported
    assert sorted(p.name for p in out.iterdir()) == ["labels.txt", "model.onnx", "model.tflite"]
    capsys.readouterr()
    saved = json.loads((run / "metrics.json").read_text())
    for name in ("model.onnx", "model.tflite"):
        assert main(["evaluate", str(out / name), str(digits_folder), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["num_images"] == 300 and result["accuracy"] > saved["accuracy"] - 0.2
    image = next(digits_folder.glob("3/*.png"))
    assert main(["predict", str(image), "--model", str(out / "model.tflite"), "--json", "--top", "3"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert len(result["predictions"]) == 3 and result["predictions"][0]["label"] in [
        str(d) for d in range(10)
    ]


@pytest.mark.slow
def test_export_float_without_calibration(run, tmp_path):
    assert main(["export", str(run), "--format", "onnx", "--quantize", "none", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "model.onnx").stat().st_size > 3e6


@pytest.mark.slow
def test_export_without_bias_correction_writes_the_uncorrected_biases(run, exported, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    def biases(folder):
        model = onnx.load(folder / "model.onnx")
        return {
            t.name: numpy_helper.to_array(t)
            for t in model.graph.initializer
            if t.name.endswith("bias_quantized")
        }

    # the same export as `exported` but for the flag: its .onnx file holds the corrected biases
    args = ["export", str(run), "--format", "onnx", "--calibration-images", CALIBRATION_IMAGES]
    assert main([*args, "--no-bias-correction", "--out", str(tmp_path / "plain")]) == 0
    corrected, plain = biases(exported), biases(tmp_path / "plain")
    changed = [name for name in plain if not np.array_equal(plain[name], corrected[name])]
    assert changed  # the correction moved some integer biases; the flag left them as quantized


@pytest.mark.slow
def test_export_int16_calibrates_on_the_run_images(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from effnet import runtime

    args = ["export", str(run), "--format", "onnx", "--quantize", "int16"]
    args += ["--calibration-images", CALIBRATION_IMAGES]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert "onnx (int16)" in capsys.readouterr().out
    predictor = runtime.load(tmp_path / "model.onnx")
    assert predictor.metadata.quantization == "int16"
    assert list(predictor.metadata.labels) == [str(d) for d in range(10)]


@pytest.mark.slow
def test_export_finetune_steps_fine_tunes_before_quantizing(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from effnet import runtime

    out = tmp_path / "tuned"
    args = ["export", str(run), "--format", "onnx", "--finetune-steps", "3"]
    args += ["--calibration-images", CALIBRATION_IMAGES]
    args += ["--out", str(out)]
    assert main(args) == 0
    assert "onnx (int8)" in capsys.readouterr().out
    assert runtime.load(out / "model.onnx").metadata.quantization == "int8"
    assert main(["export", str(run), "--quantize", "fp16", "--finetune-steps", "3", "--out", str(out)]) == 2
    assert "--finetune-steps applies to --quantize int8 or int16, not fp16" in capsys.readouterr().err


@pytest.mark.slow
def test_export_weight_rounding_gptq_rounds_on_the_calibration_images(run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    from effnet import runtime
    from effnet.export import qat

    calls = []

    def spy(network, images, portable):  # GPTQ itself: tests/export/test_rounding.py; here: the wiring
        calls.append((images.shape, portable))
        return network

    monkeypatch.setattr(qat, "gptq_round", spy)
    out = tmp_path / "gptq"
    args = ["export", str(run), "--format", "onnx", "--weight-rounding", "gptq", "--calibration-images", "12"]
    assert main([*args, "--out", str(out)]) == 0
    assert "onnx (int8)" in capsys.readouterr().out
    size = runtime.load(out / "model.onnx").metadata.preprocessing.input_size
    (shape, portable), *others = calls
    assert not others and shape == (12, 3, *size)  # --calibration-images
    assert portable  # the default int8 .onnx format's 7-bit grid
    assert (
        main(["export", str(run), "--quantize", "none", "--weight-rounding", "gptq", "--out", str(out)]) == 2
    )
    assert "--weight-rounding applies to --quantize int8 or int16, not none" in capsys.readouterr().err


@pytest.mark.slow
def test_export_int8_format_vnni_writes_8_bit_weights_and_is_refused_without_int8(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from effnet import runtime

    out = tmp_path / "vnni"
    args = ["export", str(run), "--format", "onnx", "--int8-format", "vnni"]
    args += ["--calibration-images", CALIBRATION_IMAGES]
    assert main([*args, "--out", str(out)]) == 0
    assert runtime.load(out / "model.onnx").metadata.int8_format == "vnni"
    args = ["export", str(run), "--quantize", "fp16", "--int8-format", "vnni", "--out", str(out)]
    assert main(args) == 2
    assert "--int8-format applies to --quantize int8, not fp16" in capsys.readouterr().err


@pytest.fixture(scope="module")
def folder_with_bad_files(digits_folder, tmp_path_factory):
    """2 classes of 12 digits each, plus 7 unreadable files and 2 entries the listing leaves out."""
    import os
    import shutil

    root = tmp_path_factory.mktemp("bad-files")
    for label in ("0", "1"):
        (root / label).mkdir()
        for path in sorted((digits_folder / label).glob("*.png"))[:12]:
            shutil.copy(path, root / label / path.name)
    for index in range(7):
        (root / str(index % 2) / f"broken{index}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" * index)
    (root / "0" / "dangling.png").symlink_to("nowhere.png")
    os.mkfifo(root / "1" / "pipe.jpg")
    return root


def test_train_lists_every_skipped_file_in_the_run_folder(folder_with_bad_files, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", str(folder_with_bad_files), "--out", str(out), "--image-size", "32", "--epochs", "2"]
    args += ["--model", "efficientnet_lite0"]  # at 32 px: this test is about the files
    assert main([*args, "--val-split", "0.2", "--test-split", "0.2", "--workers", "0"]) == 0
    lines = (out / "skipped.txt").read_text().splitlines()
    assert len(lines) == 9  # all of them, where the log names 5
    assert sum("cannot decode" in line for line in lines) == 7
    assert any(line.endswith("dangling.png: broken symlink (its target does not exist)") for line in lines)
    assert any(line.endswith("pipe.jpg: a FIFO (named pipe), not a regular file") for line in lines)
    assert f"9 files skipped (unreadable or over the decode budget); all listed in {out / 'skipped.txt'}" in (
        capsys.readouterr().out
    )
    splits = json.loads((out / "splits.json").read_text())
    used = splits["train"] + splits["validation"] + splits["test"]
    assert len(used) == 24 and not [path for path in used if "broken" in path]
