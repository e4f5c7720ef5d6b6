"""run_bench and `effnet bench` on a real small model at 64 px: schema, values, plot, errors."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

from effnet import count_params, create_model, profile
from effnet.bench import plot_accuracy_latency, run_bench
from effnet.cli import main
from effnet.runtime.cpu import ARM_FEATURES, X86_FEATURES, cpu_info

MODEL = "mobilenet_v3_small_075"
KNOWN_FEATURES = {*X86_FEATURES.values(), *ARM_FEATURES.values()}
KEYS = {
    "model",
    "family",
    "format",
    "threads",
    "batch",
    "size_bytes",
    "params",
    "macs",
    "latency_ms_median",
    "latency_ms_p10",
    "latency_ms_p90",
    "images_per_s",
    "top1_reference",
    "accuracy",
    "skipped",
    "cpu",
    "cpu_features",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def rows(workdir):
    return run_bench(
        models=[MODEL],
        formats=["torch", "onnx", "onnx-int8"],
        threads=[1, 2],
        resolution=64,
        runs=3,
        warmup=1,
        workdir=workdir,
        progress=False,
    )


def test_one_row_per_format_and_thread_count(rows):
    assert [(r["format"], r["threads"]) for r in rows] == [
        (f, t) for f in ("torch", "onnx", "onnx-int8") for t in (1, 2)
    ]
    for row in rows:
        assert set(row) >= KEYS, KEYS - set(row)
        assert row["model"] == MODEL and row["family"] == "mobilenet_v3"
        assert row["batch"] == 1 and row["resolution"] == 64
        assert row["skipped"] is None


def test_latency_values_are_sane(rows):
    for row in rows:
        assert 0 < row["latency_ms_p10"] <= row["latency_ms_median"] <= row["latency_ms_p90"]
        assert row["images_per_s"] == pytest.approx(1000 / row["latency_ms_median"], rel=1e-2)
        assert row["attempts"] in (1, 2, 3)
        assert row["noisy"] == (row["spread"] > 1.5)


def test_size_params_and_macs_are_the_real_ones(rows):
    model = create_model(MODEL, input_size=(64, 64))
    for row in rows:
        assert row["size_bytes"] == os.path.getsize(row["file"])
        assert row["params"] == count_params(model)
        assert row["macs"] == profile(model, 64).macs
        assert row["top1_reference"] == 65.4
    sizes = {r["format"]: r["size_bytes"] for r in rows}
    # int8 weights: about a quarter of the float file (plus scales and graph)
    assert sizes["onnx-int8"] < 0.4 * sizes["onnx"]
    assert sizes["onnx"] == pytest.approx(sizes["torch"], rel=0.1)


def test_cli_json_reuses_the_cached_files(rows, workdir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in Path(workdir).iterdir()}
    code = main(
        [
            *("bench", "--models", MODEL, "--formats", "onnx-int8", "--threads", "2", "--resolution", "64"),
            *("--runs", "3", "--warmup", "1", "--workdir", str(workdir), "--json"),
        ]
    )
    assert code == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["format"], row["threads"], row["size_bytes"]) == ("onnx-int8", 2, rows[-1]["size_bytes"])
    after = {p.name: p.stat().st_mtime_ns for p in Path(workdir).iterdir()}
    assert after == before  # nothing re-exported
    # numbers from different machines must not be compared blind: the record names this CPU
    assert row["cpu"] == cpu_info().name and isinstance(row["cpu"], str) and row["cpu"]
    assert row["cpu_features"] is None or set(row["cpu_features"]) <= KNOWN_FEATURES


def test_cli_table(rows, workdir, capsys):
    argv = ["bench", "--models", MODEL, "--formats", "torch", "--resolution", "64", "--runs", "3"]
    code = main([*argv, "--workdir", str(workdir)])
    out = capsys.readouterr().out
    assert code == 0
    header, _, line = out.splitlines()[:3]
    assert "median ms" in header and "p10-p90 ms" in header and "images/s" in header
    assert line.split()[:4] == [MODEL, "torch", "1", "1"]
    assert "(65.4)" in line  # the reference top-1, marked as not measured
    assert "cpu" in header.split() and cpu_info().label in line


def test_plot_writes_png_and_svg(rows, tmp_path):
    written = plot_accuracy_latency(rows, tmp_path / "bench.png")
    assert written == [tmp_path / "bench.png", tmp_path / "bench.svg"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "bench.svg").read_text()
    assert "<svg" in svg and "mobilenet_v3" in svg


def test_plot_without_any_accuracy_says_what_to_do(rows, tmp_path):
    unrated = [{**r, "top1_reference": None} for r in rows]
    with pytest.raises(ValueError, match="--plot"):
        plot_accuracy_latency(unrated, tmp_path / "bench.png")


@pytest.mark.slow
def test_tflite_int8_row(workdir):
    if importlib.util.find_spec("ai_edge_litert") is None or importlib.util.find_spec("litert_torch") is None:
        pytest.skip("LiteRT (ai-edge-litert, litert-torch) is not installed")
    [row] = run_bench(
        models=[MODEL],
        formats=["tflite-int8"],
        resolution=64,
        runs=3,
        warmup=1,
        workdir=workdir,
        progress=False,
    )
    assert row["skipped"] is None
    assert row["file"].endswith(".tflite") and row["size_bytes"] == os.path.getsize(row["file"])
    assert 0 < row["latency_ms_p10"] <= row["latency_ms_median"] <= row["latency_ms_p90"]


def test_tflite_with_a_batch_is_a_skipped_row_not_a_crash(workdir):
    [row] = run_bench(
        models=[MODEL], formats=["tflite"], batch=4, resolution=64, runs=2, workdir=workdir, progress=False
    )
    assert row["skipped"] and "batch 1" in row["skipped"]
    assert row["latency_ms_median"] is None


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--models", "efficientnet_b99"], "--models"),
        (["--models", MODEL, "--formats", "onnx,coreml"], "--formats"),
        (["--family", "resnet"], "--family"),
        (["--data", "somewhere"], "--data"),
    ],
)
def test_bad_arguments_give_one_line_naming_the_argument(argv, named, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("effnet bench: error:") and named in err


def test_cuda_on_a_cpu_machine_says_so_and_exits_0(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["bench", "--device", "cuda", "--models", MODEL]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "no CUDA device" in out and "skipped" in out


def test_torch_compile_failure_is_a_skipped_row_with_the_reason(workdir, monkeypatch):
    import torch

    def no_compiler(model, *args, **kwargs):
        def broken(*inputs):
            raise RuntimeError("Compiler: cc not found\nlong inductor traceback ...")

        return broken

    monkeypatch.setattr(torch, "compile", no_compiler)
    rows = run_bench(
        models=[MODEL],
        formats=["torch-compile", "torch"],
        threads=[1, 2],
        resolution=64,
        runs=2,
        workdir=workdir,
        progress=False,
    )
    compiled = [r for r in rows if r["format"] == "torch-compile"]
    assert [r["skipped"] for r in compiled] == [
        "torch.compile failed: RuntimeError: Compiler: cc not found"
    ] * 2
    assert all(r["latency_ms_median"] is None for r in compiled)
    assert all(r["latency_ms_median"] > 0 for r in rows if r["format"] == "torch")
