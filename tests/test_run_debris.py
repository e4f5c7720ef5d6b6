"""What kill -9 leaves behind is cleaned up by the next write, and a second training process on the same
run folder is refused while the first one runs."""

import os
import subprocess
import sys
import time

import pytest

from effnet.checkpoint import STALE_AFTER_SECONDS, write_json
from effnet.cli import main
from effnet.export.files import staging_folder
from effnet.run_lock import LOCK_FILE, RunFolderBusyError, run_lock


def age(path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_the_first_write_removes_stale_temporaries_and_keeps_the_rest(tmp_path):
    stale = tmp_path / ".checkpoint.pt.k2j4_x9a.tmp"
    fresh = tmp_path / ".model.safetensors.ab12cd34.tmp"  # another process may be writing it now
    not_ours = [tmp_path / ".notes.tmp", tmp_path / "data.abcdefgh.tmp", tmp_path / ".cache.abcdefgh.partial"]
    for path in (stale, fresh, *not_ours):
        path.write_bytes(b"partial")
        age(path, 2 * STALE_AFTER_SECONDS)
    age(fresh, 10)
    write_json(tmp_path / "config.json", {"a": 1})
    assert not stale.exists()
    assert fresh.exists() and all(path.exists() for path in not_ours)


def test_an_export_removes_stale_work_folders(tmp_path):
    stale = tmp_path / ".model.onnx.q8z_1x0p.partial"
    live = tmp_path / ".model.tflite.0p9q8r7s.partial"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "float.onnx").write_bytes(b"half")
        age(folder / "float.onnx", 2 * STALE_AFTER_SECONDS)
        age(folder, 2 * STALE_AFTER_SECONDS)
    age(live / "float.onnx", 10)  # its export is still writing into it
    with staging_folder(tmp_path / "model.onnx") as work:
        assert work.is_dir()
    assert not stale.exists() and live.exists()


@pytest.fixture
def other_process_holds(tmp_path):
    """A second Python process that holds the run lock of tmp_path/run until the test ends."""
    run = tmp_path / "run"
    code = (
        "import sys; from effnet.run_lock import run_lock\n"
        f"with run_lock({str(run)!r}):\n    print('locked', flush=True); sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout.readline().strip() == "locked"
    yield run, holder.pid
    holder.stdin.close()
    holder.wait(timeout=30)


def test_a_second_process_on_the_same_run_folder_is_refused(other_process_holds):
    run, pid = other_process_holds
    message = f"{run}: process {pid} is training into this folder"
    with pytest.raises(RunFolderBusyError, match=message), run_lock(run):
        pass
    assert (run / LOCK_FILE).read_text().strip() == str(pid)


def test_effnet_train_names_the_process_that_holds_the_folder(other_process_holds, capsys):
    run, pid = other_process_holds
    assert main(["train", "no-such-data", "--out", str(run)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"effnet train: error: {run}: process {pid} is training into this folder; wait for it to finish "
        "or choose another run folder"
    )


def test_the_lock_is_reentrant_and_released(tmp_path):
    with run_lock(tmp_path), run_lock(tmp_path):  # the CLI holds it around create(), which takes it too
        pass
    code = f"from effnet.run_lock import run_lock\nwith run_lock({str(tmp_path)!r}): pass"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=30)
