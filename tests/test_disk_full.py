"""A full disk stops a run cleanly: before each save the free space is checked against the last
save's size, and a run that is short of it stops in one line naming its folder, its last good
backup intact, so that the same command resumes once there is space. HDF5 can crash the whole
process when the disk fills during a write, so the check comes before the write."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple

import keras
import pytest

from alexnet_tf import run_folder
from alexnet_tf.run_folder import DiskFull, RunFolder, shown, variables_bytes
from conftest import REPO, cli, tiny

Usage = namedtuple("Usage", "total used free")
MB = 2**20


def fake_free(monkeypatch, free):
    """shutil.disk_usage as run_folder sees it, with ``free(path)`` bytes free."""
    real = shutil.disk_usage

    def usage(path):
        total, used, _ = real(path)
        return Usage(total, used, free(path))

    monkeypatch.setattr(run_folder.shutil, "disk_usage", usage)


def small_model():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1000)(inputs))  # 9,000 float32 weights: 36,000 bytes
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_the_first_estimate_is_the_weights_and_the_optimizer_state():
    model = small_model()
    # the weights, then Adam's two moments of each, and a few scalars (its step count, its rate)
    assert 3 * 36_000 <= variables_bytes(model) < 3 * 36_000 + 100


def test_the_space_check_uses_the_last_save_and_names_the_folder(tmp_path, monkeypatch):
    run = RunFolder(path=tmp_path / "runs" / "mine")
    run.backup.mkdir(parents=True)
    model = small_model()
    target = run.backup / "latest.weights.h5"
    fake_free(monkeypatch, lambda path: MB)  # 1 MB: more than the first estimate needs (0.1 MB + 1 MB)
    with pytest.raises(DiskFull):  # 1.1 x the estimate, plus 1 MB for the file's own structures
        run.require_space(model, target, "epoch 1's backup")
    fake_free(monkeypatch, lambda path: 2 * MB)
    run.require_space(model, target, "epoch 1's backup")
    with open(target, "wb") as f:  # the last save: 10 MB, the estimate from now on
        f.truncate(10 * MB)
    (run.backup / "training_metadata.json").write_text(json.dumps({"epoch": 3, "batch": 0}))
    with pytest.raises(DiskFull) as raised:
        run.require_space(model, target, "epoch 4's backup")
    message = str(raised.value)
    assert message.startswith(f"{shown(run.path)}: out of disk space") and "epoch 4's backup" in message
    assert "2.0 MB free" in message and "holds epoch 3" in message and "run the same command again" in message
    assert raised.value.errno == 28 and isinstance(raised.value, OSError)
    fake_free(monkeypatch, lambda path: 13 * MB)
    run.require_space(model, target, "epoch 4's backup")


def test_a_run_short_of_space_stops_before_each_save_and_the_same_command_resumes(
    synthetic_root, tmp_path, monkeypatch, capsys
):
    """A run short of space for a backup stops before it, as does one short of space for the final
    model, and the same command resumes each time."""
    from alexnet_tf.training import train

    config = tiny(synthetic_root, tmp_path / "runs", epochs=3)
    run = RunFolder(config)
    latest, meta = run.backup / "latest.weights.h5", run.backup / "training_metadata.json"
    # Plenty of room until epoch 1's backup is on disk, then none.
    fake_free(monkeypatch, lambda path: 10 * MB if meta.is_file() else 10**12)
    args = ["train", "--preset", "quick", "--data", synthetic_root, "--runs-dir", tmp_path / "runs"]
    args += ["--epochs", 3, "--images-per-class", 8, "--verbose", "line"]
    code, _, err = cli(args, capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{shown(run.path)}: out of disk space" in err
    assert "holds epoch 1" in err and "run the same command again to resume" in err
    assert json.loads(meta.read_text())["epoch"] == 1 and latest.is_file()
    assert not list(run.backup.glob(".tmp-*")) and not (run.path / "model.keras").exists()
    monkeypatch.undo()
    # Room for everything of each epoch; none once the backup holds the last (the final model comes next).
    fake_free(monkeypatch, lambda path: 0 if json.loads(meta.read_text())["epoch"] == 3 else 10**12)
    monkeypatch.setattr(run_folder._BestModel, "on_epoch_end", lambda self, epoch, logs=None: None)
    with pytest.raises(DiskFull, match="the final model.keras.*holds epoch 3"):
        train(config, verbose=0)
    assert not (run.path / "model.keras").exists() and run.backup.is_dir()
    monkeypatch.undo()
    code, _, err = cli(args, capsys)
    assert code == 0, err
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["resumed"] and metrics["epochs"] == 3


# --- a real full disk: a small tmpfs (root only) ---------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs mounted at tmp_path/disk, and a function that resizes it (megabytes)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()

    def mount(megabytes, remount=False):
        options = f"{'remount,' if remount else ''}size={megabytes}m"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True)
        return done.returncode == 0

    if not mount(8):
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN)")
    try:
        yield disk, lambda megabytes: mount(megabytes, remount=True)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow
def test_a_real_full_disk_ends_in_one_line_and_the_run_resumes_once_there_is_space(synthetic_root, small_disk, capsys):
    from alexnet_tf.model import alexnet_model

    disk, resize = small_disk
    # best.keras and the backup hold the weights and Adam's two moments: 3 x 4 bytes a parameter.
    save = alexnet_model(num_classes=10, variant="tiny").count_params() * 12 / MB
    # Room for epoch 1's best.keras and backup, not for epoch 2's best.keras beside them.
    assert resize(int(2.4 * save))
    args = ["train", "--preset", "quick", "--data", str(synthetic_root)]
    args += ["--runs-dir", str(disk / "runs"), "--epochs", "3", "--images-per-class", "8", "--verbose", "line"]
    # A process of its own: were HDF5 to crash on the full disk, the test would see it, not die of it.
    command = [sys.executable, "-m", "alexnet_tf", *args]
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert first.returncode == 1, first.stderr[-3000:]  # not -11: no segmentation fault
    assert "Traceback" not in first.stderr
    line = first.stderr.strip().splitlines()[-1]
    with contextlib.chdir(REPO):  # the folder as the command, run there, shows it
        assert line.startswith("error: ") and "out of disk space" in line and shown(disk / "runs") in line
    assert "holds epoch 1" in line and "run the same command again to resume" in line
    (run,) = (disk / "runs").glob("tiny-*")
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert resize(int(6 * save))
    code, _, err = cli(args, capsys)  # the same command, here: the disk has room now
    assert code == 0, err[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["resumed"] and metrics["epochs"] == 3 and not (run / "backup").exists()
