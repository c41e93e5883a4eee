"""Shared fixtures: the synthetic dataset everywhere, the real Tiny ImageNet zip where present."""

import os
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
