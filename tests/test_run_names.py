"""A run name is a name: ``--name`` is one plain folder inside ``--runs-dir``, a folder that holds
something other than a run is never written into, and the automatic name given by hand is the
same run."""

import hashlib
import json

import pytest

from alexnet_tf.config import TrainConfig
from alexnet_tf.run_folder import RunFolder
from alexnet_tf.training import train
from conftest import cli, tiny


def one_line_error(err):
    return err.startswith("error: ") and err.count("\n") == 1


def snapshot(folder):
    """Every file and folder under ``folder``, with each file's sha256 and mtime."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        if p.is_file()
        else "folder"
        for p in sorted(folder.rglob("*"))
    }


def train_args(root, runs, *extra):
    return ["train", "--preset", "quick", "--data", root, "--runs-dir", runs, "--epochs", 1, "--images-per-class", 8]


@pytest.fixture
def no_decoding(monkeypatch):
    from alexnet_tf import data

    def refuse(*args, **kwargs):
        raise AssertionError("images were decoded before the name was checked")

    monkeypatch.setattr(data, "load_images", refuse)


@pytest.mark.parametrize(
    "name", ["../../escape", "../beside", "a/b", "/abs/path", "", "  ", ".", "..", "a\\b", "C:escape"]
)
def test_a_name_that_is_not_one_plain_folder_is_refused_before_anything(
    synthetic_root, tmp_path, capsys, no_decoding, name
):
    work = tmp_path / "work"
    runs = work / "deep" / "runs"
    runs.mkdir(parents=True)
    before = snapshot(tmp_path)
    code, _, err = cli([*train_args(synthetic_root, runs), "--name", name], capsys)
    assert code == 1 and one_line_error(err), err
    assert "--name" in err and "plain folder name" in err
    assert snapshot(tmp_path) == before  # nothing written, inside --runs-dir or outside it
    with pytest.raises(ValueError, match="--name"):
        TrainConfig(name=name)


@pytest.mark.parametrize("name", ["mine", "tiny200-40e", "a.b", "run 2", "..dots-inside.."])
def test_plain_names_are_accepted(name):
    assert TrainConfig(name=name).run_name == name


def user_folder(runs):
    """A folder of the user's own, not a run: files a run would write, and one it would not."""
    mine = runs / "mine"
    (mine / "figures").mkdir(parents=True)
    (mine / "history.csv").write_text("epoch,loss\n0,my own numbers\n")
    (mine / "figures" / "history.png").write_bytes(b"\x89PNG my own figure")
    (mine / "notes.txt").write_text("keep me")
    return mine


@pytest.mark.parametrize("how", ["cli", "python"])
def test_a_folder_holding_files_but_no_run_is_never_written_into(synthetic_root, tmp_path, capsys, no_decoding, how):
    runs = tmp_path / "runs"
    mine = user_folder(runs)
    before = snapshot(tmp_path)
    if how == "cli":
        code, _, err = cli([*train_args(synthetic_root, runs), "--name", "mine"], capsys)
        assert code == 1 and one_line_error(err), err
    else:
        with pytest.raises(FileExistsError) as raised:
            train(tiny(synthetic_root, runs, name="mine"), verbose=0)
        err = str(raised.value)
    assert str(mine) in err and "no run" in err and "--name" in err
    assert snapshot(tmp_path) == before


def test_a_file_where_the_run_folder_would_be_is_refused(synthetic_root, tmp_path, capsys, no_decoding):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "mine").write_text("a file of mine")
    before = snapshot(tmp_path)
    code, _, err = cli([*train_args(synthetic_root, runs), "--name", "mine"], capsys)
    assert code == 1 and one_line_error(err) and str(runs / "mine") in err and "not a folder" in err
    assert snapshot(tmp_path) == before


def test_an_empty_folder_may_hold_the_run(synthetic_root, tmp_path):
    runs = tmp_path / "runs"
    (runs / "mine").mkdir(parents=True)
    result = train(tiny(synthetic_root, runs, name="mine"), verbose=0)
    assert result.run_dir == runs / "mine" and (runs / "mine" / "metrics.json").is_file()


def test_the_automatic_name_given_as_name_is_the_same_run(finished_run, synthetic_root, tmp_path, capsys):
    config = tiny(synthetic_root, tmp_path / "runs")
    assert finished_run.name == config.run_name
    again = train(config.replace(name=config.run_name), verbose=0)
    assert "is a finished run of this config" in capsys.readouterr().out
    assert again.run_dir == finished_run and again.metrics == json.loads((finished_run / "metrics.json").read_text())
    # The folder under another name (copied, renamed) is still the run its config.json records.
    stored = json.loads((finished_run / "config.json").read_text())
    assert stored["name"] is None
    RunFolder(config.resolved().replace(name=config.run_name)).check_config(
        TrainConfig.from_json(json.dumps(stored)).replace(name="anything")
    )


def test_another_config_in_a_named_folder_is_still_refused(synthetic_root, tmp_path):
    config = tiny(synthetic_root, tmp_path / "runs", name="mine")
    train(config, verbose=0)
    with pytest.raises(FileExistsError, match=r"dropout: 0\.5 -> 0\.3"):
        train(config.replace(dropout=0.3), verbose=0)


def test_evaluation_names_are_plain_too(finished_run, tmp_path, capsys):
    run = finished_run
    for name in ("../x", "/abs", "a/b", ".hidden", ""):
        code, _, err = cli(["evaluate", run, "--as", name], capsys)
        assert code == 1 and one_line_error(err) and "--as" in err, (name, err)
    assert not (run / "evaluations").exists() and not (run.parent / "x").exists() and not (tmp_path / "x").exists()
