"""The notebooks' set-up in and out of Colab (tested without Colab: a stand-in module plays it)."""

import json
import types
from pathlib import Path

import pytest

import alexnet_tf.colab as colab_setup
from alexnet_tf.saved_run import finished_run
from conftest import REPO, copy_run, tiny

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def fake_colab(mounted):
    return types.SimpleNamespace(drive=types.SimpleNamespace(mount=lambda path: mounted.append(path)))


def test_outside_colab_the_local_folders_are_used(capsys):
    paths = colab_setup.setup(keep_on_drive=True, data_dir="here/data", runs_dir="here/runs")
    assert paths == {"data_dir": "here/data", "runs_dir": "here/runs"}
    out = capsys.readouterr().out
    assert "Colab only" in out and "Keras 3." in out and "TensorFlow 2." in out and "backend tensorflow" in out


def test_modules_replaced_after_loading_call_for_a_restart(monkeypatch):
    import numpy

    assert colab_setup.stale_modules() == []
    monkeypatch.setattr(numpy, "__version__", "1.0.0")
    assert colab_setup.stale_modules() == [
        f"numpy 1.0.0 -> {__import__('importlib.metadata').metadata.version('numpy')}"
    ]


def test_in_colab_data_and_runs_go_to_drive_on_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(colab_setup, "DRIVE_MOUNT", str(tmp_path / "drive"))
    mounted = []
    paths = colab_setup.setup(keep_on_drive=True, colab=fake_colab(mounted))
    assert mounted == [str(tmp_path / "drive")]
    assert paths["data_dir"] == str(tmp_path / "drive" / "MyDrive" / "alexnet-tf" / "data")
    assert Path(paths["runs_dir"]).is_dir() and Path(paths["data_dir"]).is_dir()
    assert "Change runtime type" in capsys.readouterr().out  # a CPU runtime is told how to get the GPU
    mounted.clear()
    monkeypatch.delenv(colab_setup.RUNS_DIR_VARIABLE, raising=False)
    monkeypatch.delenv(colab_setup.DATA_DIR_VARIABLE, raising=False)
    assert colab_setup.setup(colab=fake_colab(mounted)) == {"data_dir": "../data", "runs_dir": "../runs"}
    assert mounted == []


def test_the_folders_come_from_the_environment_where_set(monkeypatch):
    """The tests point the notebooks at temporary folders this way, so no test writes into the checkout."""
    monkeypatch.setenv(colab_setup.DATA_DIR_VARIABLE, "/elsewhere/data")
    monkeypatch.setenv(colab_setup.RUNS_DIR_VARIABLE, "/elsewhere/runs")
    assert colab_setup.setup() == {"data_dir": "/elsewhere/data", "runs_dir": "/elsewhere/runs"}
    assert colab_setup.setup(runs_dir="mine")["runs_dir"] == "mine"  # an argument wins


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_open_on_a_gpu_and_install_from_one_address(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["accelerator"] == "GPU"
    assert notebook["metadata"]["colab"]["gpuType"] == "T4"
    setup = "".join(next(c for c in notebook["cells"] if c["cell_type"] == "code")["source"])
    first = "".join(
        next(c for c in json.loads(NOTEBOOKS[0].read_text())["cells"] if c["cell_type"] == "code")["source"]
    )
    assert f'REPO_URL = "{colab_setup.REPO_URL}"' in setup and setup == first  # one set-up cell everywhere
    assert '"pip", "install"' in setup


def test_finished_run_is_found_only_when_finished(finished_template, synthetic_root, tmp_path):
    config = tiny(synthetic_root, tmp_path)
    assert finished_run(config) is None
    run = copy_run(finished_template, tmp_path)
    (run / "metrics.json").rename(run / "metrics.json.away")  # as it is until the run ends
    assert finished_run(config) is None
    (run / "metrics.json.away").rename(run / "metrics.json")
    found = finished_run(config)
    assert found is not None and found.metrics == json.loads((run / "metrics.json").read_text())


def test_the_install_line_says_whether_colab_packages_were_touched(capsys):
    alone = "Obtaining file:///content/alexnet-tf\nSuccessfully installed alexnet-tf-0.1.0\n"
    assert "the project alone" in colab_setup.install_summary(alone)
    upgraded = "Successfully installed alexnet-tf-0.1.0 numpy-2.4.6 tensorflow-2.21.0\n"
    assert "numpy-2.4.6, tensorflow-2.21.0" in colab_setup.install_summary(upgraded)
    colab_setup.setup(pip_output=alone)
    assert "the project alone" in capsys.readouterr().out


def test_the_floors_are_those_ci_tests_and_at_most_colabs():
    import re
    import tomllib

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = dict(d.split(">=") for d in dependencies)
    pinned = dict(re.findall(r"^([a-z]+)==([0-9.]+)$", (REPO / "requirements-floor.txt").read_text(), re.MULTILINE))
    for name, floor in floors.items():
        assert pinned[name].startswith(floor), (name, floor, pinned[name])  # CI tests the floor itself
    version = lambda v: tuple(int(x) for x in v.split("."))
    colab = {"tensorflow": "2.19", "keras": "3.10"}  # Colab's runtime (TensorFlow 2.19, Keras 3.10)
    assert all(version(floors[name]) <= version(v) for name, v in colab.items())
