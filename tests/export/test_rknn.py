"""Rockchip NPU .rknn export (`effnet.export.rknn`), run in rknn-toolkit2's simulator, and the ONNX file for
rknn-toolkit v1 (`effnet.export.rknn_v1`).

The toolkit lives in its own environment (`make rknn-env`, which `make test` runs); without it the tests
that convert are skipped and say so, the others (errors, parsing, the v1 file) always run."""

import json
from pathlib import Path

import numpy as np
import pytest

from effnet.export.rknn import export_rknn, layer_table
from effnet.runtime.rknn_engine import RknnEnvironmentError, rknn_python

try:
    rknn_python()
    HAVE_TOOLKIT = True
except RknnEnvironmentError:
    HAVE_TOOLKIT = False
needs_toolkit = pytest.mark.skipif(
    not HAVE_TOOLKIT, reason="rknn-toolkit2's environment is missing: `make rknn-env` creates it"
)


def test_missing_environment_names_the_command(small_model, tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_RKNN_ENV", str(tmp_path / "no-such-env"))
    with pytest.raises(RknnEnvironmentError, match=r"make rknn-env.*EFFNET_RKNN_ENV"):
        export_rknn(small_model, tmp_path / "model.rknn", "fp16")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target": "rv1126"}, r"rknn-toolkit v1: docs/rknn.md"),
        ({"target": "rk9999"}, r"target: unknown 'rk9999'; choose from rk3588"),
        ({"quantization": "dynamic"}, r"quantization: unknown 'dynamic'; choose from int8, int16, fp16"),
        ({"algorithm": "gdq"}, r"algorithm: unknown 'gdq'; choose from normal, mmse, kl"),
    ],
)
def test_bad_arguments_name_the_argument(small_model, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        export_rknn(small_model, tmp_path / "model.rknn", **options)


def test_a_rknn_file_without_its_simulation_folder_says_why(tmp_path):
    from effnet import runtime
    from effnet.runtime import ModelFileError

    file = tmp_path / "model.rknn"
    file.write_bytes(b"RKNN" + bytes(64))
    with pytest.raises(ModelFileError, match=r"model.rknn.sim/.*cannot run a .rknn file by itself"):
        runtime.load(file)


ANALYSIS = """
layer_name                                        simulator_error
                                              entire              single
                                           cos      euc        cos      euc
---------------------------------------------------------------------------------
[Input] input                            1.00000 | 0.00000   1.00000 | 0.00000
[exDataConvert] input_int8               0.99990 | 0.06345   0.99990 | 0.06345
[Conv] conv_1
[Clip] hardtanh_3                        0.97000 | 3.20000   0.98500 | 1.00000
[Conv] logits_mm                         0.96000 | 0.00094   0.99900 | 0.00094
"""


def test_layer_table_puts_the_layers_that_lose_most_first():
    table = layer_table(ANALYSIS).splitlines()
    assert table[0].split()[:2] == ["layer", "op"]
    assert [line.split()[0] for line in table[1:]] == ["hardtanh_3", "logits_mm", "input_int8", "input"]
    assert table[1].split()[2:] == ["0.98500", "0.97000"]


def test_rknn_v1_onnx_file_fits_the_v1_toolkit(small_model, tmp_path):
    """RV1126 / RV1109: opset 12, IR version 6, operators of the toolkit's list only (Lite0's mean pooling
    becomes GlobalAveragePool), fixed float32 shapes, the same outputs as PyTorch."""
    import onnx
    import onnxruntime

    from effnet.export.rknn_v1 import V1_OPERATORS, export_onnx_for_rknn_v1, rknn_v1_problems
    from effnet.export.torch_model import reference_outputs

    path = export_onnx_for_rknn_v1(small_model, tmp_path / "model-rv1126.onnx")
    model = onnx.load(path)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 12)]
    assert model.ir_version == 6
    operators = {node.op_type for node in model.graph.node}
    assert operators <= V1_OPERATORS and "GlobalAveragePool" in operators and "ReduceMean" not in operators
    assert rknn_v1_problems(path) == []
    image = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": image})[0], reference_outputs(small_model, image), atol=1e-4
    )


def test_rknn_v1_problems_lists_what_does_not_fit(onnx_float_file):
    """effnet's regular .onnx file (opset 18, dynamo exporter) is not for rknn-toolkit v1."""
    from effnet.export.rknn_v1 import rknn_v1_problems

    problems = " ".join(rknn_v1_problems(onnx_float_file))
    assert "opset 18" in problems and "IR version" in problems


@pytest.fixture(scope="module")
def rknn_files(small_model, small_images, tmp_path_factory):
    """small_model as int8 and fp16 .rknn files for rk3588 (32 images calibrate, 16 check)."""
    folder = tmp_path_factory.mktemp("rknn")
    return {
        mode: export_rknn(
            small_model,
            folder / f"model-{mode}.rknn",
            mode,
            representative_data=small_images,
            quantization_steps=32,
        )
        for mode in ("int8", "fp16")
    }


@needs_toolkit
@pytest.mark.slow
def test_rknn_files_compute_what_onnx_runtime_computes(rknn_files, small_images, small_model):
    """In the toolkit's simulator, fp16 matches ONNX Runtime's float32 closely and int8 agrees with it on
    the held-out images; the file carries effnet's metadata, is about a quarter (int8) / half (fp16) of the
    float weights, and nothing else is left in the folder."""
    from effnet import runtime
    from effnet.runtime.onnx_engine import OnnxPredictor

    held_out = small_images[32:]
    fp16, int8 = rknn_files["fp16"], rknn_files["int8"]
    reference = OnnxPredictor(fp16.parent / "model-fp16.rknn.sim" / "model.onnx").predict_batch(held_out)
    assert fp16.check.quantization == "fp16" and int8.check.inputs == "held-out images"
    assert int8.check.num_inputs == 16 and int8.check.top1_agreement >= 0.9

    predictor = runtime.load(int8)
    try:
        assert predictor.labels == list(small_model.labels)
        assert predictor.input_layout == "NHWC" and predictor.metadata.quantization == "int8"
        outputs = predictor.predict_batch(held_out)
    finally:
        predictor.close()
    assert outputs.shape == reference.shape
    assert (outputs.argmax(1) == reference.argmax(1)).mean() >= 0.9
    np.testing.assert_allclose(outputs, reference, atol=0.2 * np.abs(reference).max())

    # the fp16 file's own check ran it in the simulator on representative images against PyTorch
    assert fp16.check.max_abs_diff < 0.02 * np.abs(reference).max() and fp16.check.top1_agreement == 1.0

    weights = sum(p.numel() for p in small_model.parameters()) * 4
    assert 0.15 * weights < int8.stat().st_size < 0.45 * weights < fp16.stat().st_size < 0.75 * weights
    assert sorted(path.name for path in int8.parent.iterdir()) == [
        "model-fp16.rknn",
        "model-fp16.rknn.sim",
        "model-int8.rknn",
        "model-int8.rknn.sim",
    ]
    settings = json.loads((int8.parent / "model-int8.rknn.sim" / "build.json").read_text())
    assert settings["build"]["dtype"] == "w8a8" and settings["build"]["target"] == "rk3588"
    assert b'"model_name":"efficientnet_lite0"' in int8.read_bytes()  # the custom string, for the board


@needs_toolkit
def test_a_failed_build_leaves_the_previous_file(small_model, tmp_path, monkeypatch):
    """A toolkit failure is one line naming the step, and the destination keeps what it held."""
    from effnet.runtime import rknn_engine

    target = tmp_path / "model.rknn"
    target.write_bytes(b"previous")
    monkeypatch.setattr(rknn_engine, "build_job", lambda folder: {"target": "rk0000"})
    with pytest.raises(RuntimeError, match="rknn-toolkit2 failed while building the model"):
        export_rknn(small_model, target, "fp16")
    assert target.read_bytes() == b"previous"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.rknn"]


@pytest.fixture
def tiny_run_with_images(tmp_path):
    """A tiny classifier run (mobilenet_v1_025 at 32 px, a random head: a constant one the toolkit refuses)
    and 12 images in its three class folders."""
    import torch
    from PIL import Image
    from tiny_run import LABELS, save_tiny_run

    from effnet.image_classifier import load

    classifier = load(save_tiny_run(tmp_path / "run"))
    with torch.no_grad():
        classifier.network.classifier.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    run = classifier.save(tmp_path / "run")
    rng = np.random.default_rng(0)
    for label in LABELS:
        (tmp_path / "data" / label).mkdir(parents=True)
        for index in range(4):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{index}.png")
    return run, tmp_path / "data"


@needs_toolkit
@pytest.mark.slow
def test_cli_exports_and_evaluates_a_rknn_file(tiny_run_with_images, tmp_path, capsys):
    """`effnet export RUN --format rknn --target ... --quantization ...` and `effnet evaluate model.rknn
    DATA` (in the simulator): the same accuracy as the .onnx file; RV1126 gets the v1 ONNX file."""
    from effnet.cli import main

    run, data = tiny_run_with_images
    out = tmp_path / "export"
    args = ["export", str(run), "--format", "rknn,onnx", "--target", "rk3566", "--quantization", "fp16"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"rknn    {out / 'model.rknn'}" in printed and "rknn (fp16): top-1 agreement" in printed
    assert json.loads((out / "model.rknn.sim" / "build.json").read_text())["build"]["target"] == "rk3566"

    assert main(["evaluate", str(out / "model.rknn"), str(data), "--json"]) == 0
    simulated = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(out / "model.onnx"), str(data), "--json"]) == 0
    assert simulated == json.loads(capsys.readouterr().out)

    assert main(["export", str(run), "--format", "rknn", "--target", "rv1126", "--out", str(out)]) == 0
    assert "rknn-toolkit v1" in capsys.readouterr().out
    assert (out / "model-rv1126.onnx").is_file()


def test_cli_refuses_dynamic_rknn(tiny_run_with_images, capsys):
    from effnet.cli import main

    run, _ = tiny_run_with_images
    assert main(["export", str(run), "--format", "rknn", "--quantization", "dynamic"]) == 2
    assert "--quantize dynamic does not exist on the NPU" in capsys.readouterr().err


@needs_toolkit
def test_bench_lists_rknn_sizes_without_latency(tmp_path, capsys):
    """`effnet bench --formats rknn-fp16`: the file's size, and "simulated: no latency" for its timing."""
    from effnet.cli import main

    argv = ["bench", "--models", "mobilenet_v1_025", "--formats", "rknn-fp16", "--resolution", "32"]
    assert main([*argv, "--runs", "2", "--workdir", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["format"] == "rknn-fp16" and row["latency_ms_median"] is None
    file = Path(row["file"])
    assert file.parent == tmp_path and file.name.endswith("-fp16.rknn")
    assert row["size_bytes"] == file.stat().st_size > 0
    assert row["skipped"].startswith("simulated: no latency")
    assert main([*argv, "--runs", "2", "--workdir", str(tmp_path)]) == 0  # the cached file
    [line] = [line for line in capsys.readouterr().out.splitlines() if "rknn-fp16" in line]
    assert "simulated: no latency" in line and "skipped" not in line


@needs_toolkit
@pytest.mark.slow
def test_embedder_rknn_file_is_measured_like_the_other_exports(digits_folder, warmed_up, tmp_path, capsys):
    """An embedder's int16 .rknn file: the export measures mean cosine to PyTorch and verification accuracy
    on held-out identities; `effnet evaluate model.rknn HELD_OUT` reports the same cosine (to the float ONNX
    file it was built from) and verification accuracy."""
    import shutil

    import effnet
    from effnet import embedder
    from effnet.cli import main
    from effnet.data import ImageDataset

    data = ImageDataset.from_folder(digits_folder, shuffle=False)
    held_out = tmp_path / "held-out"
    train_paths, train_labels = [], []
    for label in range(10):
        paths = [p for p, c in zip(data.paths, data.labels, strict=True) if c == label][:8]
        if label < 4:
            train_paths += paths
            train_labels += [label] * len(paths)
        elif label >= 7:
            (held_out / str(label)).mkdir(parents=True)
            for path in paths:
                shutil.copy(path, held_out / str(label))
    train = ImageDataset.from_samples(train_paths, np.array(train_labels), list("0123"))
    held = ImageDataset.from_folder(held_out, shuffle=False)
    network = warmed_up(effnet.create_embedder("mobilenet_v1_025", "gap", 32, 32), 32)
    model = embedder.Embedder(network)
    result = model.export(tmp_path / "out", "rknn", "int16", representative_data=train, validation_data=held)
    entry = result["rknn"]
    assert "rknn (int16): mean cosine similarity to PyTorch" in entry["check"]
    assert entry["mean_cosine"] > 0.99 and 0.0 <= entry["verification"]["accuracy"] <= 1.0

    assert main(["evaluate", entry["path"], str(held_out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["mean_cosine"] == pytest.approx(entry["mean_cosine"], abs=1e-3)
    assert evaluated["verification"]["accuracy"] == pytest.approx(entry["verification"]["accuracy"])
