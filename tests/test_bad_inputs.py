"""Bad input to training and evaluation: a clear one-line error or the right result, never a
traceback, a silently wrong number or a run folder that a retry trips over."""

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from alexnet_tf.cli import build_parser, config_from_args, parse_classes
from alexnet_tf.config import TrainConfig, preset
from alexnet_tf.data import select_data
from alexnet_tf.training import train
from conftest import REPO, cli, tiny
from data_prep.tiny_imagenet import DataFormatError

# --- config files and options -----------------------------------------------------------------


@pytest.mark.parametrize(
    "edit,names",
    [
        ({"learning_rat": 0.1}, ["learning_rat"]),  # an unknown key (a typo, or another version's setting)
        ({"epochs": "ten"}, ["epochs", "'ten'"]),  # a wrong type
        ({"classes": [1, 2], "images_per_class": "8"}, ["images_per_class"]),
    ],
)
def test_hand_edited_config_json_is_named_with_its_key(finished_run, tmp_path, capsys, edit, names):
    run = finished_run
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **edit}))
    code, _, err = cli(["evaluate", run], capsys)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line, no traceback
    assert str(run / "config.json") in err and all(name in err for name in names)


def test_config_json_that_is_not_json(finished_run, tmp_path, capsys):
    run = finished_run
    (run / "config.json").write_text("{not json")
    code, _, err = cli(["evaluate", run], capsys)
    assert code == 1 and "config.json is not valid JSON" in err


@pytest.mark.parametrize(
    "text,expected",
    [
        ("10", 10),
        ("first:2", 2),
        ("random:3", "random:3"),
        ("n01443537", ["n01443537"]),
        ("n01443537,n01629819", ["n01443537", "n01629819"]),
        ("none", None),
    ],
)
def test_classes_option_takes_the_subset_grammar(text, expected):
    assert parse_classes(text) == expected


def test_train_options_override_and_unset_the_preset():
    parser = build_parser()
    from alexnet_tf.cli import config_from_args

    config = config_from_args(
        parser.parse_args(["train", "--preset", "quick", "--classes", "first:2", "--images-per-class", "none"])
    )
    assert config.classes == 2 and config.images_per_class is None  # quick's 60 is unset
    config = config_from_args(
        parser.parse_args(
            ["train", "--preset", "quick", "--classes", "syn003", "--mixing", "none", "--jit-compile", "off"]
        )
    )
    assert config.classes == ["syn003"] and config.mixing is None and config.jit_compile is False
    assert config_from_args(parser.parse_args(["train", "--preset", "quick"])).images_per_class == 60
    # --augment names some settings; the preset's others stay (tiny10 pads and crops by 4 pixels)
    config = config_from_args(
        parser.parse_args(["train", "--preset", "tiny10", "--augment", '{"rotation_degrees": 5}'])
    )
    assert config.augment.rotation_degrees == 5 and config.augment.crop_padding == 4


def test_train_classes_by_name_and_first_n(synthetic_root, tmp_path, capsys):
    import pandas as pd

    wnids = sorted(p.name for p in (synthetic_root / "train").iterdir())
    base = [
        "train",
        "--preset",
        "quick",
        "--data",
        synthetic_root,
        "--runs-dir",
        tmp_path,
        "--epochs",
        "1",
        "--images-per-class",
        "8",
    ]
    # One end to end: the run's manifest lists the classes asked for.
    code, _, err = cli(base + ["--classes", "first:2"], capsys)
    assert code == 0, err
    assert sorted(pd.read_csv(next(tmp_path.glob("*/manifest.csv")))["wnid"].unique()) == wnids[:2]
    # By name: the option's value, as the command line reads it, selects the images training loads.
    args = build_parser().parse_args([str(a) for a in base] + ["--classes", f"{wnids[5]},{wnids[3]}"])
    assert select_data(config_from_args(args)).class_names == [wnids[3], wnids[5]]
    code, _, err = cli(base + ["--classes", wnids[3]], capsys)  # one class: no classifier to train
    assert code == 1 and "at least 2" in err


def test_random_classes_are_seeded(synthetic_root, tmp_path):
    from data_prep.subset import choose_classes

    config = tiny(synthetic_root, tmp_path, classes="random:3", seed=5)
    used = select_data(config).class_names  # the images training loads
    assert sorted(used) == choose_classes(synthetic_root, "random:3", 5)


def test_help_gives_every_option_a_text_and_its_default(capsys):
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    options = [line.split()[0] for line in text.splitlines() if line.strip().startswith("--")]
    assert len(options) > 30
    for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions:
        if action.option_strings and action.dest not in ("help",):
            assert action.help and "default" in action.help, action.option_strings
    with pytest.raises(SystemExit):
        cli(["--help"], capsys)
    top = capsys.readouterr().out
    assert all(c in top for c in ("main ", "train ", "evaluate ", "python -m alexnet_tf train --preset"))


# --- diverged runs and run names --------------------------------------------------------------


def test_diverged_run_keeps_no_unusable_model_and_the_retry_is_not_refused(synthetic_root, tmp_path, capsys):
    args = [
        "train",
        "--preset",
        "quick",
        "--data",
        synthetic_root,
        "--runs-dir",
        tmp_path,
        "--epochs",
        "2",
        "--images-per-class",
        "8",
        "--optimizer",
        "sgd",
        "--schedule",
        "constant",
    ]
    code, _, err = cli(args + ["--learning-rate", "1e12"], capsys)
    assert code == 1 and "diverged" in err and "--learning-rate" in err
    for path in tmp_path.glob("*/*.keras"):  # anything kept must be usable
        weights = keras.models.load_model(path).get_weights()
        assert all(np.isfinite(w).all() for w in weights), path
    assert not list(tmp_path.glob("*/backup"))
    code, _, err = cli(args + ["--learning-rate", "1e-3"], capsys)
    assert code == 0, err


def test_run_names_tell_configs_apart(tmp_path):
    a = preset("quick", runs_dir=str(tmp_path))
    assert a.run_name == preset("quick", runs_dir=str(tmp_path)).run_name
    assert a.run_name != a.replace(learning_rate=0.5).run_name
    assert a.run_name != a.replace(augment=a.augment.__class__(crop_padding=2)).run_name
    assert a.run_name == a.replace(runs_dir=str(tmp_path / "elsewhere")).run_name


def test_a_named_folder_with_another_config_says_what_differs(finished_run, synthetic_root):
    config = TrainConfig.from_json((finished_run / "config.json").read_text())
    with pytest.raises(FileExistsError, match=r"dropout: 0\.5 -> 0\.3.*--name"):
        train(
            config.replace(
                dropout=0.3,
                precision="auto",
                jit_compile=None,
                name=finished_run.name,
                runs_dir=str(finished_run.parent),
            ),
            verbose=0,
        )


# --- folders that cannot be written, splits without labels ------------------------------------


def test_unwritable_runs_folder_fails_before_any_decoding(synthetic_root, tmp_path, monkeypatch, capsys):
    from alexnet_tf import data

    def no_decoding(*args, **kwargs):
        raise AssertionError("images were decoded before the runs folder was checked")

    monkeypatch.setattr(data, "load_images", no_decoding)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = cli(["train", "--preset", "quick", "--data", synthetic_root, "--runs-dir", blocker / "runs"], capsys)
    assert code == 1 and "cannot write to" in err and str(blocker) in err


def test_read_only_run_folder_for_evaluate_is_named_before_predicting(finished_run, monkeypatch, capsys):
    from alexnet_tf import saved_run
    from data_prep import fsutil

    def read_only(folder):
        raise PermissionError(f"cannot write to {folder} ([Errno 30] Read-only file system)")

    def no_prediction(*args, **kwargs):
        raise AssertionError("predicted before checking the run folder")

    monkeypatch.setattr(fsutil, "check_writable", read_only)
    monkeypatch.setattr(saved_run, "predict", no_prediction)
    code, _, err = cli(["evaluate", finished_run], capsys)
    assert code == 1 and str(finished_run) in err and "copy the folder somewhere writable" in err


def test_unlabelled_validation_split_is_refused_before_training(synthetic_root, tmp_path, monkeypatch):
    from alexnet_tf import training

    monkeypatch.setattr(training, "build_model", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(DataFormatError, match="has no labels"):
        train(tiny(synthetic_root, tmp_path, val_split="test"), verbose=0)
    assert not list(tmp_path.iterdir())


def test_evaluate_test_split_on_a_folder_holding_only_test_images(finished_run, synthetic_root, tmp_path, capsys):
    only_test = tmp_path / "to-label"
    shutil.copytree(synthetic_root / "test", only_test / "test")
    run = finished_run
    code, _out, err = cli(["evaluate", run, "--split", "test", "--data", only_test], capsys)
    assert code == 0, err
    assert len((run / "predictions_test.csv").read_text().splitlines()) == 1 + 20
    code, _, err = cli(["evaluate", run, "--split", "val", "--data", only_test], capsys)
    assert code == 1 and str(only_test / "val") in err


# --- loading saved models, log lines -----------------------------------------------------------


@pytest.mark.parametrize("imports", ["import alexnet_tf, keras", "import keras, alexnet_tf"])
def test_import_alexnet_tf_is_enough_to_load_a_saved_model(finished_run, imports):
    code = f"{imports}; m = keras.models.load_model({str(finished_run / 'model.keras')!r}); print('LOADED', m.name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "LOADED alexnet_tiny" in out.stdout, out.stderr[-2000:]


def test_cpu_machine_prints_no_cuda_errors(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-m", "alexnet_tf", "evaluate", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        (f"error: {tmp_path / 'nothing' / 'model.keras'} not found: is {tmp_path / 'nothing'} a finished run folder?")
    ]


def test_multiworker_is_refused_with_the_reason(capsys):
    code, _, err = cli(["train", "--distribute", "multiworker"], capsys)
    assert code == 1 and "MultiWorkerMirroredStrategy" in err


def test_augment_setting_of_the_wrong_type_is_named():
    with pytest.raises(ValueError, match="augment=.*zoom"):
        TrainConfig(augment={"zoom": "0.1"})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['zoom_range'\]"):
        TrainConfig(augment={"zoom_range": 0.1})


@pytest.mark.parametrize(
    "args,code,expected",
    [
        (["--help"], 0, "usage: python -m alexnet_tf"),
        (["train", "--help"], 0, "--variant {tiny,wide,original,mini}"),
        (["train", "--epochs", "0"], 1, "error: bad training config: epochs=0 (--epochs) must be >= 1"),
        (["train", "--augmentation", "fancy"], 2, "invalid choice: 'fancy'"),
    ],
)
def test_help_and_refused_values_come_before_keras_loads(args, code, expected):
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "alexnet_tf", *args], capture_output=True, text=True, cwd=REPO
    )
    timings = [line for line in out.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in timings}
    said = out.stdout + "\n".join(line for line in out.stderr.splitlines() if line not in timings)
    assert out.returncode == code and expected in said, said[-2000:]
    assert len(imported) > 10 and not imported & {"keras", "tensorflow", "jax", "torch"}, sorted(imported)
