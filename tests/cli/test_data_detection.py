"""`effnet data detection OUT`: writes the built-in detection set and says how to read it."""

from __future__ import annotations

import pytest

from effnet.cli import main


def test_data_detection_writes_the_set(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["data", "detection", str(out), "--train", "6", "--test", "2", "--image-size", "96"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: 6 train and 2 test images (96 px JPEG" in printed
    assert f"DetectionData.from_pascal_voc('{out}/train/images'" in printed
    assert len(list((out / "train" / "images").glob("*.jpg"))) == 6
    assert len(list((out / "test" / "annotations").glob("*.xml"))) == 2
    assert (out / "label_map.txt").read_text().split() == ["cat", "cup", "rocket", "coin", "astronaut"]


def test_data_detection_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["data", "detection", str(tmp_path / "x"), "--train", "-2"])
    assert "--train: must be an integer >= 0, got '-2'" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    assert main(["data", "detection", str(tmp_path / "full"), "--train", "1", "--test", "0"]) != 0
    err = capsys.readouterr().err
    assert "full: exists and is not a detection set written with these arguments" in err
    assert "Traceback" not in err
