"""Shared fixtures: the synthetic dataset everywhere, the real Tiny ImageNet zip where present."""

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tiny(root, runs, **changes):
    """A quick run small enough for a few seconds on the CPU (one epoch, 8 images a class)."""
    from alexnet_tf.config import preset

    return preset("quick", **{"data": str(root), "runs_dir": str(runs), "epochs": 1, "images_per_class": 8, **changes})


def cli(args, capsys):
    """``python -m alexnet_tf ARGS`` in this process: (exit code, stdout, stderr)."""
    from alexnet_tf.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


class StopAfterEpoch(KeyboardInterrupt):
    """What ``stop_after``'s callback raises: fit ends as Ctrl-C ends it, after an epoch's backup."""


def stop_after(epochs=1):
    """A callback that ends fit after ``epochs`` epochs, as a kill would (the backup is written)."""
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= epochs:
                raise StopAfterEpoch

    return Stop()


def copy_run(run, runs_dir, data=None):
    """``run`` copied into ``runs_dir`` as if it had been trained there, on ``data`` (a copy of
    its dataset) where given: its config.json names the new places, and nothing else changes."""
    copy = Path(runs_dir) / Path(run).name
    shutil.copytree(run, copy)
    record = json.loads((copy / "config.json").read_text())
    record["runs_dir"] = str(runs_dir)
    if data is not None:
        record["data"] = str(data)
    (copy / "config.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    return copy


def real_zip_path():
    """``$TINY_IMAGENET_ZIP`` or ``../shared/data/tiny-imagenet-200.zip`` beside the repo, if it exists."""
    candidates = [os.environ.get("TINY_IMAGENET_ZIP"), REPO.parent / "shared" / "data" / "tiny-imagenet-200.zip"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the decoded-array cache of the tests out of the user's home."""
    os.environ["ALEXNET_TF_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    from data_prep import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), train_per_class=60, val_per_class=10, test_images=20)


@pytest.fixture
def no_run_figures(monkeypatch):
    """For tests of what runs return, not of their figures: each run's evaluation draws none
    (drawing them is most of a quick run's evaluation; test_train checks them)."""
    from alexnet_tf import saved_run

    monkeypatch.setattr(saved_run, "evaluation_figures", lambda *args, **kwargs: None)


@pytest.fixture(scope="session")
def finished_template(synthetic_root, tmp_path_factory):
    """``tiny``'s run on the synthetic set, trained once a session. Never changed: tests take a
    copy (``finished_run``, or ``copy_run`` beside a copy of the data)."""
    from alexnet_tf.training import train

    return train(tiny(synthetic_root, tmp_path_factory.mktemp("finished")), verbose=0).run_dir


@pytest.fixture
def finished_run(finished_template, tmp_path):
    """A finished run of ``tiny`` in this test's own runs folder, free to change."""
    return copy_run(finished_template, tmp_path / "runs")


@pytest.fixture(scope="session")
def interrupted_template(synthetic_root, tmp_path_factory):
    """``tiny``'s run for 3 epochs, stopped after its second as a kill stops it: backups of epoch 2
    (latest) and epoch 1 (previous), no model yet. Trained once a session; tests take a copy."""
    from alexnet_tf.run_folder import RunFolder
    from alexnet_tf.training import train

    config = tiny(synthetic_root, tmp_path_factory.mktemp("interrupted"), epochs=3)
    with pytest.raises(StopAfterEpoch):
        train(config, callbacks=[stop_after(2)], verbose=0)
    return RunFolder(config).path


@pytest.fixture
def interrupted(interrupted_template, synthetic_root, tmp_path):
    """(config, folder): a copy of the interrupted run in this test's runs folder, and its config."""
    return tiny(synthetic_root, tmp_path / "runs", epochs=3), copy_run(interrupted_template, tmp_path / "runs")


@pytest.fixture(scope="session")
def learned_run(synthetic_root, tmp_path_factory):
    """(config, result) of the quick preset trained 8 epochs on the 600 synthetic train images:
    a model that has learned (test_train checks that it has), trained once a session. Tests read
    it; the only writes are evaluate's own files, which it rewrites the same."""
    from alexnet_tf.config import preset
    from alexnet_tf.training import train

    runs = tmp_path_factory.mktemp("learned")
    config = preset("quick", data=str(synthetic_root), runs_dir=str(runs), epochs=8, images_per_class=60)
    return config, train(config, verbose=0)


@pytest.fixture(scope="session")
def real_zip():
    path = real_zip_path()
    if path is None:
        pytest.skip("real Tiny ImageNet zip not found (set TINY_IMAGENET_ZIP to run these tests)")
    return path


@pytest.fixture(scope="session")
def real_root(real_zip, tmp_path_factory):
    from data_prep import extract

    return extract(real_zip, tmp_path_factory.mktemp("real"))
