"""Runs already on disk keep working: a run saved by the code before the run-folder redesign
(taken from git) resumes, finishes and evaluates with today's code."""

import json
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

from alexnet_tf.config import ADDED_LATER, AUGMENT_ADDED_LATER, TrainConfig
from alexnet_tf.saved_run import evaluate_saved, load_run
from alexnet_tf.training import train
from conftest import REPO

# The last commit before alexnet_tf.run_folder: BackupAndRestore's backup, no data fingerprint.
BEFORE_RUN_FOLDER = "74ec753"


@pytest.fixture(scope="module")
def old_code(tmp_path_factory):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the project's git history")
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BEFORE_RUN_FOLDER}^{{commit}}"])
    if found.returncode != 0:  # a shallow clone: the old code is not there to run
        pytest.skip(f"commit {BEFORE_RUN_FOLDER} is not in this clone (git fetch --unshallow brings it)")
    out = tmp_path_factory.mktemp("old-code")
    archive = out / "code.tar"
    subprocess.run(
        ["git", "-C", str(REPO), "archive", "-o", str(archive), BEFORE_RUN_FOLDER, "alexnet_tf", "data_prep"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def old_json(config) -> str:
    """``config.to_json()`` without the settings added since, which are at the value that trains as
    the old code did (the old code refuses settings it does not know)."""
    values = json.loads(config.to_json())
    for key, value in ADDED_LATER.items():
        assert values.pop(key) == value, f"{key} must stay at {value!r} for the old code"
    for key, value in AUGMENT_ADDED_LATER.items():
        assert values["augment"].pop(key) == value, f"augment.{key} must stay at {value!r} for the old code"
    return json.dumps(values)


def interrupted_config(data, runs_dir) -> TrainConfig:
    """The old code's run stopped after the first of its two epochs."""
    return TrainConfig(
        data=str(data),
        runs_dir=str(runs_dir),
        epochs=2,
        images_per_class=8,
        batch_size=32,
        optimizer="adam",
        learning_rate=1e-3,
        name="old-run",
    )


def finished_config(data, runs_dir) -> TrainConfig:
    """The old code's run trained to its end (one epoch), in the folder named after its settings."""
    return TrainConfig(
        data=str(data),
        runs_dir=str(runs_dir),
        epochs=1,
        images_per_class=8,
        batch_size=32,
        optimizer="adam",
        learning_rate=1e-3,
    )


FINISHED = "the finished run is done"


@pytest.fixture(scope="module")
def old_runs(old_code, synthetic_root, tmp_path_factory):
    """Both runs of the old code, in one fresh interpreter: ``finished_config``'s to its end (the
    script then prints ``FINISHED``), then ``interrupted_config``'s stopped after its first epoch
    of two (the process exits with status 3). Returns (its runs folder, the CompletedProcess).
    Tests copy a run out before changing it."""
    runs = tmp_path_factory.mktemp("old-runs")
    finished, interrupted = finished_config(synthetic_root, runs), interrupted_config(synthetic_root, runs)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(old_code)!r})
        import keras
        from alexnet_tf.config import TrainConfig
        from alexnet_tf.training import train

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                raise SystemExit(3)  # after the first epoch

        train(TrainConfig.from_json({old_json(finished)!r}), verbose=0)
        print({FINISHED!r}, flush=True)
        train(TrainConfig.from_json({old_json(interrupted)!r}), callbacks=[Stop()], verbose=0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=old_code)
    return runs, out


def copy_run(old_runs, name, tmp_path):
    """The old code's run ``name``, copied to ``tmp_path/runs`` (the folder of a run moved elsewhere)."""
    runs, _ = old_runs
    source = runs / name
    assert source.is_dir(), f"the old code wrote {sorted(p.name for p in runs.iterdir())}, not {name}"
    return shutil.copytree(source, tmp_path / "runs" / name)


@pytest.mark.slow
def test_an_interrupted_run_of_the_old_code_resumes_and_evaluates(old_runs, synthetic_root, tmp_path):
    config = interrupted_config(synthetic_root, tmp_path / "runs")
    _, out = old_runs
    assert out.returncode == 3, out.stderr[-2000:]
    run_dir = copy_run(old_runs, "old-run", tmp_path)
    assert (run_dir / "backup" / "latest.weights.h5").is_file()
    assert "data_fingerprint" not in json.loads((run_dir / "config.json").read_text())

    result = train(config, verbose=0)
    assert result.metrics["resumed"] and list(result.history["epoch"]) == [0, 1]
    assert not (run_dir / "backup").exists()
    assert len(json.loads((run_dir / "config.json").read_text())["data_fingerprint"]) == 64
    assert evaluate_saved(run_dir)["top1_accuracy"] == pytest.approx(result.metrics["top1_accuracy"])


@pytest.mark.slow
def test_a_finished_run_of_the_old_code_loads_and_evaluates(old_runs, synthetic_root, tmp_path):
    config = finished_config(synthetic_root, tmp_path / "runs")
    _, out = old_runs
    assert FINISHED in out.stdout, out.stderr[-2000:]
    # the same name and config hash as the old code gave it
    run_dir = copy_run(old_runs, config.run_name, tmp_path)
    old_metrics = json.loads((run_dir / "metrics.json").read_text())
    loaded = train(config, verbose=0)  # a finished run: loaded, not trained again
    assert loaded.run_dir == run_dir and loaded.metrics == old_metrics
    assert load_run(run_dir).report is not None
    assert evaluate_saved(run_dir)["top1_accuracy"] == pytest.approx(old_metrics["top1_accuracy"])
