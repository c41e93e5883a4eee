"""What the commands say: every bad file named with advice for its own command, a run in training
said to be in training, SIGTERM ended as Ctrl-C is, a model that holds code refused as such, the
backend a run was trained on, and no start-up noise on any backend."""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import keras
import pytest

from alexnet_tf import hardware
from alexnet_tf.cli import build_parser, verbosity
from alexnet_tf.run_folder import RunFolder
from alexnet_tf.saved_run import predict_files
from alexnet_tf.training import train
from conftest import REPO, cli, copy_run, tiny


def one_line_error(err):
    return err.startswith("error: ") and err.count("\n") == 1


# --- predict: every bad file named, the good ones predicted ------------------------------------------


def image_files(synthetic_root, tmp_path):
    good = tmp_path / "good.jpg"
    shutil.copy(next((synthetic_root / "val").rglob("*.JPEG")), good)
    (tmp_path / "a.jpg").write_bytes(b"not an image at all")
    (tmp_path / "b.jpg").write_bytes(good.read_bytes()[:40])  # a JPEG cut after its header
    (tmp_path / "folder.jpg").mkdir()
    return [tmp_path / n for n in ("a.jpg", "b.jpg", "good.jpg", "missing.jpg", "folder.jpg")]


def test_predict_names_each_bad_file_and_predicts_the_good_ones(finished_run, synthetic_root, tmp_path, capsys):
    files = image_files(synthetic_root, tmp_path)
    code, out, err = cli(["predict", finished_run, *files], capsys)
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), err
    for bad, line in zip([f for f in files if f.name != "good.jpg"], lines):
        assert str(bad) in line
    assert "no such file" in lines[2] and "is a folder" in lines[3]
    assert "dataset" not in err.lower() and "Re-extract" not in err  # advice for predict, not for a dataset
    assert out.splitlines()[0] == str(tmp_path / "good.jpg") and len(out.splitlines()) == 6


def test_predict_files_in_python_names_every_bad_file_or_collects_them(finished_run, synthetic_root, tmp_path):
    files = image_files(synthetic_root, tmp_path)
    with pytest.raises(ValueError) as raised:
        predict_files(finished_run, files)
    assert all(str(f) in str(raised.value) for f in files if f.name != "good.jpg")
    failed = []
    table = predict_files(finished_run, files, failed=failed)
    assert list(table["file"]) == [str(tmp_path / "good.jpg")] and len(failed) == 4


def test_predict_refuses_a_bad_count_or_no_image_before_anything_loads(tmp_path, capsys):
    for args, said in (
        (["predict", "--top", "0", tmp_path, tmp_path / "a.jpg"], "--top 0: give at least 1"),
        (["predict", tmp_path], "give a finished run folder, then image files"),
    ):
        code, out, err = cli(args, capsys)
        assert code == 1 and out == "" and one_line_error(err) and said in err


def test_predict_with_only_bad_files_predicts_nothing_and_fails(finished_run, tmp_path, capsys):
    code, out, err = cli(["predict", finished_run, tmp_path / "missing.jpg"], capsys)
    assert code == 1 and out == "" and one_line_error(err) and "no such file" in err


# --- evaluate: a run in use, a run in training -------------------------------------------------------


def test_a_second_evaluate_is_told_of_as_and_as_works_beside_it(finished_run, capsys):
    with RunFolder(path=finished_run).lock():
        code, _, err = cli(["evaluate", finished_run], capsys)
        assert code == 1 and one_line_error(err) and "in use by process" in err
        assert "--as NAME" in err and "--name" not in err
        code, _, err = cli(["evaluate", finished_run, "--as", "beside"], capsys)
        assert code == 0, err
    assert (finished_run / "evaluations" / "beside" / "metrics.json").is_file()


def in_training(run):
    """``run`` as a training leaves it before its end: a backup, no final model."""
    (run / "model.keras").unlink()
    (run / "metrics.json").unlink()
    (run / "backup").mkdir()
    shutil.copy(run / "best.keras", run / "backup" / "latest.weights.h5")
    (run / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": 0}))


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("held", [True, False])
def test_a_run_in_training_is_said_to_be_in_training(finished_run, synthetic_root, capsys, command, held):
    in_training(finished_run)
    image = next((synthetic_root / "val").rglob("*.JPEG"))
    args = [command, finished_run] + ([image] if command == "predict" else [])
    if held:
        with RunFolder(path=finished_run).lock():
            code, _, err = cli(args, capsys)
        assert "still in training" in err and f"process {os.getpid()}" in err
    else:
        code, _, err = cli(args, capsys)
        assert "stopped before its end" in err and "train command again" in err
    assert code == 1 and one_line_error(err) and "epoch 1 of 1 done" in err
    assert "not found" not in err


def test_a_held_run_without_a_model_yet_is_in_training(finished_run, capsys):
    (finished_run / "model.keras").unlink()  # the lock held before the first backup
    with RunFolder(path=finished_run).lock():
        code, _, err = cli(["evaluate", finished_run], capsys)
    assert code == 1 and one_line_error(err) and "still in training" in err and "no epoch done yet" in err


# --- models that hold code, config files with unknown keys ----------------------------------------------


def test_a_model_holding_code_is_refused_for_safety_with_the_way_to_load_it(finished_run, synthetic_root, capsys):
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Lambda(lambda x: x[:, 0, 0, :] * 0 + 1)(inputs)
    keras.Model(inputs, outputs).save(finished_run / "model.keras")
    for args in (["evaluate", finished_run], ["predict", finished_run, next((synthetic_root / "val").rglob("*.JPEG"))]):
        code, _, err = cli(args, capsys)
        assert code == 1 and one_line_error(err), err
        assert "holds code" in err and "refused for safety" in err and "safe_mode=False" in err
        assert "only if you trust it" in err and "corrupt" not in err


def test_an_unknown_key_names_its_close_matches_not_every_setting(finished_run, capsys):
    config = json.loads((finished_run / "config.json").read_text())
    (finished_run / "config.json").write_text(json.dumps({**config, "learning_rat": 0.1, "zzz": 1}))
    code, _, err = cli(["evaluate", finished_run], capsys)
    assert code == 1 and one_line_error(err)
    assert "'learning_rat' (did you mean 'learning_rate'?)" in err and "'zzz'" in err
    assert "early_stopping_patience" not in err  # no list of every setting


# --- backends ----------------------------------------------------------------------------------------


def test_the_run_records_its_backend_and_old_folders_without_it_load(finished_run, tmp_path):
    from alexnet_tf.config import TrainConfig

    record = json.loads((finished_run / "config.json").read_text())
    assert record["backend"] == keras.backend.backend()
    TrainConfig.from_json(json.dumps(record))
    TrainConfig.from_json(json.dumps({k: v for k, v in record.items() if k != "backend"}))


def test_a_finished_run_of_another_backend_says_so_and_how_to_train_anew(
    finished_template, synthetic_root, tmp_path, capsys
):
    config = tiny(synthetic_root, tmp_path)
    run = copy_run(finished_template, tmp_path)
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "backend": "jax"}))
    capsys.readouterr()
    train(config, verbose=0)
    line = next(li for li in capsys.readouterr().out.splitlines() if "finished run" in li)
    assert "trained on jax" in line and f"anew on {keras.backend.backend()}" in line and "--name NEW_NAME" in line


def test_a_run_resumed_on_another_backend_says_so_once(synthetic_root, tmp_path, capsys):
    config = tiny(synthetic_root, tmp_path, epochs=2)

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Stop()], verbose=0)
    path = RunFolder(config).path / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "backend": "jax"}))
    capsys.readouterr()
    result = train(config, verbose=0)
    out = capsys.readouterr().out
    lines = [li for li in out.splitlines() if "started on jax" in li]
    assert result.metrics["resumed"] and len(lines) == 1
    assert out.count("resuming from its backup after epoch 1\n") == 1  # where this part of the log began
    assert f"resumes on {keras.backend.backend()}" in lines[0]
    assert json.loads(path.read_text())["backend"] == "jax"  # the record keeps the backend it started on


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *code], capture_output=True, text=True, cwd=REPO, env={**environ, **env}, timeout=600
    )


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("jax") is None,
    reason="needs TensorFlow and JAX installed",
)
def test_tensorflow_start_up_lines_are_hidden_under_jax_too():
    # Keras imports TensorFlow on every backend where it is installed (set_random_seed seeds it).
    code = "import alexnet_tf, keras, sys; keras.utils.set_random_seed(0); print('tensorflow' in sys.modules)"
    out = run_python(["-c", code], KERAS_BACKEND="jax")
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
    assert "I0000" not in out.stderr and "cuda" not in out.stderr.lower(), out.stderr
    shown = run_python(["-c", code], KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="0")
    assert shown.returncode == 0  # the user's own level: TensorFlow speaks as it likes


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here")
def test_a_missing_backend_package_is_one_line_with_what_to_install():
    out = run_python(["-m", "alexnet_tf", "train", "--help"], KERAS_BACKEND="torch")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [
        (
            "error: KERAS_BACKEND=torch needs torch, which is not installed: pip install torch==2.13.0 "
            "(or choose another backend with KERAS_BACKEND)"
        )
    ]
    library = run_python(["-c", "import alexnet_tf"], KERAS_BACKEND="torch")
    assert "BackendMissing" in library.stderr and "pip install torch==2.13.0" in library.stderr
    unknown = run_python(["-m", "alexnet_tf", "--help"], KERAS_BACKEND="tensorfow")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "tensorflow, jax, torch" in unknown.stderr


def test_the_backend_pins_are_the_ones_ci_and_the_readme_install():
    requirements = (REPO / "requirements.txt").read_text().split()
    for pin in (*hardware.BACKEND_PACKAGES["tensorflow"].split(), *hardware.BACKEND_PACKAGES["jax"].split()):
        assert pin in requirements
    torch = hardware.BACKEND_PACKAGES["torch"]
    assert f"pip install -q {torch}" in (REPO / ".ci" / "run").read_text()
    docs = "".join(p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))])
    assert f"pip install {torch}" in docs
    assert not re.search(r"pip install torch(?!==)", docs)  # one way to install it, the pinned one


# --- SIGTERM, as Ctrl-C -------------------------------------------------------------------------------


@pytest.mark.parametrize("sent,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_ends_a_run_with_the_line_of_ctrl_c(synthetic_root, tmp_path, sent, status):
    args = ["train", "--preset", "quick", "--data", str(synthetic_root), "--runs-dir", str(tmp_path)]
    args += ["--epochs", "300", "--images-per-class", "8"]
    # A shell starts a background job with Ctrl-C ignored, and a child inherits an ignored signal
    # (the run would train on): with a handler here, the run starts with SIGINT as a terminal's.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "alexnet_tf", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("*/backup/training_metadata.json")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(sent)
    _, err = process.communicate(timeout=300)  # a loaded 2-core machine takes its time to stop
    assert process.returncode == status, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert re.fullmatch(r"interrupted: .*backup holds epoch \d+; run the same command again to resume from there", line)
    assert not (next(tmp_path.glob("*")) / "model.keras").exists()


# --- --verbose ------------------------------------------------------------------------------------------


def test_verbose_defaults_to_a_line_an_epoch_off_a_terminal_and_a_bar_on_one(monkeypatch):
    assert (verbosity("line"), verbosity("bar"), verbosity("epoch")) == ("line", 1, 2)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert verbosity() == "line"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert verbosity() == 1
    for command in ("train", "main"):
        assert build_parser().parse_args([command, "--verbose", "epoch"]).verbose == "epoch"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--verbose", "loud"])


@pytest.mark.parametrize("choice,expected", [(None, "line"), ("line", "line"), ("bar", 1), ("epoch", 2)])
def test_verbose_reaches_train(synthetic_root, tmp_path, capsys, monkeypatch, choice, expected):
    from alexnet_tf import training

    seen = []
    monkeypatch.setattr(
        training, "train", lambda config, verbose=1: seen.append(verbose) or SimpleNamespace(run_dir=tmp_path)
    )
    code, _, err = cli(
        ["train", "--preset", "quick", "--data", synthetic_root, "--runs-dir", tmp_path, "--epochs", 1]
        + ["--images-per-class", 8]
        + (["--verbose", choice] if choice else []),
        capsys,
    )
    assert code == 0, err
    assert seen == [expected]


def test_verbose_line_from_the_command_line(synthetic_root, tmp_path, capsys):
    args = ["train", "--preset", "quick", "--data", synthetic_root, "--runs-dir", tmp_path, "--epochs", 2]
    code, out, _ = cli([*args, "--images-per-class", 8, "--verbose", "line"], capsys)
    assert code == 0
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert "━" not in out


# --- help ----------------------------------------------------------------------------------------------


def test_train_help_gives_each_option_one_default():
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in train_parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help.count("default:") == 1, (action.option_strings, action.help)
    data = next(a for a in train_parser._actions if a.dest == "data")
    assert data.help.endswith("(default: the synthetic set; none unsets it)")
