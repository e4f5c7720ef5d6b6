import json
import subprocess
import sys

import pytest

from effnet.cli import main


def test_models_json(capsys):
    assert main(["models", "--family", "efficientnet_lite", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [f"efficientnet_lite{i}" for i in range(5)]
    assert rows[0]["params"] == 4_652_008 and rows[0]["resolution"] == 224 and rows[0]["top1"] == 75.1
    assert 380e6 < rows[0]["macs"] < 390e6


def test_models_table(capsys):
    assert main(["models", "mobilenet_v3"]) == 0
    out = capsys.readouterr().out
    assert "mobilenet_v3_large_100" in out and "5,483,032" in out and "75.2" in out


def test_models_lists_detectors(capsys):
    assert main(["models", "lite0"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "efficientdet_lite0" in out and "19,206" in out
    assert "3,243,470" in out  # automl's EfficientDet-Lite0 at 90 classes (tests/models/detection)
    assert main(["models", "--family", "ssdlite", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "ssdlite_mobilenet_v3_large" and rows[0]["anchors"] == 3234
    assert all(r["family"] == "ssdlite" for r in rows)


def test_models_without_match_is_an_error(capsys):
    assert main(["models", "vgg"]) == 2
    assert "no model matches 'vgg'" in capsys.readouterr().err


def test_profile(capsys):
    assert main(["profile", "mobilenet_v3_small_100", "--resolution", "96"]) == 0
    out = capsys.readouterr().out
    assert "pooled_head.conv" in out and "2,542,856" in out


def test_unknown_model_is_one_line_error(capsys):
    assert main(["profile", "efficientnet_b9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model" in err and "Traceback" not in err


def test_console_entry_points():
    out = subprocess.run(
        [sys.executable, "-m", "effnet", "--help"], capture_output=True, text=True, check=True
    )
    assert "models" in out.stdout and "profile" in out.stdout
    version = subprocess.run([sys.executable, "-m", "effnet", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("effnet ")


def test_lazy_package_names_are_the_functions_after_submodule_imports():
    import importlib
    import types

    import effnet

    for module in (
        "effnet.profiling",
        "effnet.cli.models",
        "effnet.factory",
        "effnet.predict",
        "effnet.config",
    ):
        importlib.import_module(module)
    for name in effnet.__all__:
        value = getattr(effnet, name)
        assert not isinstance(value, types.ModuleType), name
    assert effnet.profile(effnet.create_model("mobilenet_v3_small_100"), 64).macs > 0


def test_embed_folder_listing_names_and_leaves_out_a_fifo(tmp_path, capsys):
    import os

    from PIL import Image

    from effnet.cli.embed import _image_paths

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.jpg")
    assert _image_paths([str(tmp_path)]) == [str(tmp_path / "a.png")]
    assert (
        f"{tmp_path / 'pipe.jpg'}: a FIFO (named pipe), not a regular file; skipped"
        in capsys.readouterr().err
    )


TRAIN = ["train", "data", "--out", "run"]
POSITIVE = "must be a finite number > 0, got"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([*TRAIN, "--learning-rate", "nan"], f"--learning-rate: {POSITIVE} 'nan'"),
        ([*TRAIN, "--learning-rate", "inf"], f"--learning-rate: {POSITIVE} 'inf'"),
        ([*TRAIN, "--image-size", "0"], "--image-size: must be an integer >= 1, got '0'"),
        ([*TRAIN, "--epochs", "1.5"], "--epochs: must be an integer >= 1, got '1.5'"),
        ([*TRAIN, "--val-split", "1"], "--val-split: must be a finite number >= 0 and < 1, got '1'"),
        (["data", "digits", "out", "--limit", "-5"], "--limit: must be an integer >= 1, got '-5'"),
        (["predict", "x.jpg", "--top", "0"], "--top: must be an integer >= 1, got '0'"),
    ],
)
def test_nonsense_numbers_are_one_line_usage_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("effnet ") and error.endswith(f": error: argument {expected}")


@pytest.mark.parametrize("argv", [["--help"], ["models", "--family", "efficientnet_lite", "--json"]])
def test_closed_stdout_pipe_ends_quietly(argv):
    """`effnet models --json | head -1`: the reader closes the pipe; effnet exits 141 (as SIGPIPE would; 0
    where argparse swallows the failed write of --help) without a message. The read end is closed before
    effnet writes, so every write fails."""
    process = subprocess.Popen(
        [sys.executable, "-m", "effnet", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) in (0, 141)
    assert stderr == ""


def test_output_piped_into_head_keeps_its_first_line():
    result = subprocess.run(
        f"{sys.executable} -m effnet models --family efficientnet_lite --json | head -1",
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "[\n" and result.stderr == ""


# what `effnet --help`, `effnet COMMAND --help` and `effnet models` must not import: each costs seconds
HEAVY_MODULES = (
    "torch", "torchvision", "onnx", "onnxruntime", "ai_edge_litert", "litert_torch", "matplotlib", "sklearn",
    "scipy", "skimage", "PIL", "numpy", "safetensors",
)  # fmt: skip
IMPORTS_AFTER = """
import contextlib, io, json, sys
from effnet.cli import build_parser, main

def commands(parser, path=()):
    yield path
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))

runs = [[*path, "--help"] for path in commands(build_parser())] + [["models"], ["models", "--json"]]
for argv in runs:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
print(json.dumps([len(runs), sorted({name.split(".")[0] for name in sys.modules})]))
"""


def test_help_and_models_import_no_heavy_module():
    """Parsing arguments and printing help must not import torch, the export engines or plotting: a test of
    which modules load (in a fresh interpreter), not of time."""
    result = subprocess.run([sys.executable, "-c", IMPORTS_AFTER], capture_output=True, text=True, check=True)
    runs, loaded = json.loads(result.stdout.splitlines()[-1])
    assert runs > 15  # every command and subcommand
    assert sorted(set(HEAVY_MODULES) & set(loaded)) == []


def test_errors_carry_no_terminal_escape_codes(monkeypatch, capsys):
    from effnet.cli import predict

    def fails(args):  # the way torch.load words a refused checkpoint, bold included
        raise ValueError("run/checkpoint.pt: \x1b[1mdo those steps only if you trust the source\x1b[0m; fix")

    monkeypatch.setattr(predict, "cmd_predict", fails)
    assert main(["predict", "x.jpg"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "effnet predict: error: run/checkpoint.pt: do those steps only if you trust the source; fix\n"
    )


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("\x1b[1mbold\x1b[0m and \x1b[31;1mred\x1b[m", "bold and red"),
        ("\x1b]8;;https://pytorch.org\x07link\x1b]8;;\x07", "link"),
        ("cursor\x1b[2K\x1b[1Gline", "cursorline"),
        ("no escapes: 50% [done]", "no escapes: 50% [done]"),
    ],
)
def test_strip_ansi(text, plain):
    from effnet.quiet import strip_ansi

    assert strip_ansi(text) == plain
