"""A run folder is one honest record: one writer, one dataset, one split; a damaged file is named
or mended, never served. Each case was silently wrong or unclear before the run folder kept
its lock, its data's fingerprint and two backups."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from alexnet_tf.config import preset
from alexnet_tf.run_folder import RunFolder, RunFolderInUse
from alexnet_tf.saved_run import evaluate_saved
from alexnet_tf.training import train
from conftest import REPO, StopAfterEpoch, cli, copy_run, stop_after, tiny


def one_line_error(err):
    return err.startswith("error: ") and err.count("\n") == 1


def interrupted_run(config):
    """A run stopped after its first epoch: backup on disk, no model.keras."""
    with pytest.raises(StopAfterEpoch):
        train(config, callbacks=[stop_after(1)], verbose=0)
    run = RunFolder(config)
    assert (run.backup / "latest.weights.h5").is_file() and not (run.path / "model.keras").exists()
    return run


@pytest.fixture
def own_data(synthetic_root, tmp_path):
    """A private copy of the synthetic set, free to damage."""
    root = tmp_path / "data" / synthetic_root.name
    shutil.copytree(synthetic_root, root)
    return root


# --- one writer ---------------------------------------------------------------------------------


def test_second_process_on_a_run_folder_is_refused_naming_the_holder(synthetic_root, tmp_path):
    config = tiny(synthetic_root, tmp_path)
    with RunFolder(config).lock():
        code = textwrap.dedent(f"""
            from alexnet_tf.config import TrainConfig
            from alexnet_tf.training import train
            train(TrainConfig.from_json({config.to_json()!r}), verbose=0)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode != 0 and "RunFolderInUse" in out.stderr
    message = out.stderr.strip().splitlines()[-1]
    assert str(RunFolder(config).path) in message and f"process {os.getpid()}" in message
    assert not RunFolder(config).path.exists()  # the refused process wrote nothing


def test_cli_gives_one_line_for_a_folder_in_use(synthetic_root, tmp_path, capsys):
    config = tiny(synthetic_root, tmp_path)
    with RunFolder(config).lock():
        code, _, err = cli(
            [
                "train",
                "--preset",
                "quick",
                "--data",
                synthetic_root,
                "--runs-dir",
                tmp_path,
                "--epochs",
                1,
                "--images-per-class",
                8,
            ],
            capsys,
        )
    assert code == 1 and one_line_error(err) and "in use by process" in err


def test_a_killed_holder_leaves_no_stale_lock(synthetic_root, tmp_path):
    config = tiny(synthetic_root, tmp_path)
    code = textwrap.dedent(f"""
        import time
        from alexnet_tf.config import TrainConfig
        from alexnet_tf.run_folder import RunFolder
        run = RunFolder(TrainConfig.from_json({config.to_json()!r})).lock()
        print("locked", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunFolderInUse, match=f"process {holder.pid}"):
        RunFolder(config).lock()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunFolder(config).lock():  # the OS released it with the process
        pass


def test_the_same_command_twice_at_once_gives_one_run(synthetic_root, tmp_path):
    args = [
        sys.executable,
        "-m",
        "alexnet_tf",
        "train",
        "--preset",
        "quick",
        "--data",
        str(synthetic_root),
        "--runs-dir",
        str(tmp_path),
        "--epochs",
        "2",
        "--images-per-class",
        "8",
    ]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(0.5)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    outcomes = [(p.wait(), p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _ in outcomes)
    # Either the second was refused while the first trained, or it came after and loaded the finished run.
    refused = [err for code, (_, err) in outcomes if code == 1]
    assert codes in ([0, 0], [0, 1]) and all("in use by process" in err for err in refused)
    run = next(tmp_path.glob("tiny-*"))
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3  # a header and one row an epoch: one run's rows
    assert len(list((run / "logs").rglob("*tfevents*"))) <= 2  # one train and one validation writer


# --- one dataset ----------------------------------------------------------------------------------


def test_config_records_the_data_fingerprint_and_the_manifest_hashes(finished_run):
    record = json.loads((finished_run / "config.json").read_text())
    assert len(record["data_fingerprint"]) == 64
    header = (finished_run / "manifest.csv").read_text().splitlines()[0]
    assert header == "file,wnid,class_index,words,split,size,sha256"


def test_resume_on_changed_data_is_refused_with_the_differences_counted(own_data, tmp_path):
    # Every image (with images_per_class, a deleted one would change which others are drawn too).
    config = tiny(own_data, tmp_path / "runs", epochs=2, images_per_class=None)
    interrupted_run(config)
    manifest = (RunFolder(config).path / "manifest.csv").read_text()
    train_images = sorted((own_data / "train").glob("*/images/*.JPEG"))
    used = [f for f in train_images if os.path.relpath(f, own_data) in manifest]
    used[0].unlink()
    used[1].unlink()
    shutil.copy(used[3], used[2])  # same name, other content
    with pytest.raises(ValueError, match=r"data changed.*2 image\(s\) gone.*1 image\(s\) changed.*--name"):
        train(config, verbose=0)
    assert (RunFolder(config).path / "manifest.csv").read_text() == manifest  # still says what epoch 1 saw


def test_a_runs_folder_and_dataset_moved_elsewhere_resume_there(interrupted_template, own_data, tmp_path):
    """Runs copied to Drive, or a repository cloned anew: the run is where its folder is now, and
    the manifest, not the path, says whether the images are its own."""
    config = tiny(own_data, tmp_path / "runs", epochs=3)
    copy_run(interrupted_template, tmp_path / "runs", data=own_data)
    moved_data = tmp_path / "elsewhere" / own_data.name  # the same folder name, another place
    shutil.move(own_data, moved_data)
    shutil.move(tmp_path / "runs", tmp_path / "drive-runs")
    moved = config.replace(data=str(moved_data), runs_dir=str(tmp_path / "drive-runs"))
    result = train(moved, verbose=0)
    assert result.metrics["resumed"] and list(result.history["epoch"]) == [0, 1, 2]
    assert result.run_dir == RunFolder(moved).path
    assert train(moved, verbose=0).metrics == result.metrics  # and, finished, it loads there
    with pytest.raises(FileExistsError, match="another config"):
        train(moved.replace(learning_rate=moved.learning_rate / 2, name=RunFolder(moved).path.name), verbose=0)


def test_another_zip_never_reuses_the_first_ones_folder(synthetic_root, tmp_path):
    from data_prep import extract

    def zipped(root, path, drop_class=None):
        with zipfile.ZipFile(path, "w") as archive:
            for f in sorted(root.rglob("*")):
                if f.is_file() and not (drop_class and drop_class in f.parts):
                    archive.write(f, f.relative_to(root.parent))
        return path

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    zip_a = zipped(synthetic_root, tmp_path / "a" / "tiny-imagenet-200.zip")
    zip_b = zipped(synthetic_root, tmp_path / "b" / "tiny-imagenet-200.zip", drop_class="synth0001")
    out = tmp_path / "data"
    root_a = extract(zip_a, out)
    stamp = (root_a / ".source.json").stat().st_mtime_ns
    assert extract(zip_a, out) == root_a and (root_a / ".source.json").stat().st_mtime_ns == stamp  # a no-op
    root_b = extract(zip_b, out)
    assert root_b != root_a and not (root_b / "train" / "synth0001").exists()
    assert (root_a / "train" / "synth0001").is_dir()  # A's folder is untouched
    assert extract(zip_b, out) == root_b


def test_a_class_without_training_images_is_refused(own_data, tmp_path, capsys):
    for f in (own_data / "train" / "synth0002" / "images").iterdir():
        f.unlink()
    for extra in ([], ["--images-per-class", "10"]):
        code, _, err = cli(
            [
                "train",
                "--preset",
                "quick",
                "--data",
                own_data,
                "--runs-dir",
                tmp_path / "runs",
                "--classes",
                "3",
                *extra,
            ],
            capsys,
        )
        assert code == 1 and one_line_error(err) and "synth0002" in err
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_prep",
            "subset",
            str(own_data),
            "--out",
            str(tmp_path / "sub"),
            "--classes",
            "first:3",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert code.returncode == 1 and "synth0002" in code.stderr and not (tmp_path / "sub").exists()


def test_val_split_train_is_refused(synthetic_root, tmp_path, capsys):
    code, _, err = cli(
        ["train", "--preset", "quick", "--data", synthetic_root, "--runs-dir", tmp_path, "--val-split", "train"], capsys
    )
    assert code == 1 and one_line_error(err) and "val_split='train'" in err
    assert not list(tmp_path.iterdir())


@pytest.fixture
def finished(finished_template, own_data, tmp_path):
    """A finished run on this test's own copy of the data."""
    return copy_run(finished_template, tmp_path / "runs", data=own_data)


def test_evaluate_on_other_data_writes_nothing_unless_asked(finished, own_data, tmp_path, capsys):
    other = tmp_path / "other" / own_data.name
    shutil.copytree(own_data, other)
    for f in list((other / "val").rglob("*.JPEG"))[:3]:
        shutil.copy(next((other / "train").rglob("*.JPEG")), f)
    before = {p: p.stat().st_mtime_ns for p in finished.rglob("*") if p.is_file()}
    code, _, err = cli(["evaluate", finished, "--data", other], capsys)
    assert code == 1 and one_line_error(err) and "3 image(s) changed" in err and "--as NAME" in err
    assert {p: p.stat().st_mtime_ns for p in finished.rglob("*") if p.is_file()} == before
    metrics = evaluate_saved(finished, data=other, name="other-val")
    written = finished / "evaluations" / "other-val"
    assert (written / "per_class_val.csv").is_file() and json.loads(
        (written / "metrics.json").read_text()
    ) == json.loads(json.dumps(metrics))
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # the run's own files untouched


def test_evaluate_on_its_own_data_rewrites_the_same_report(finished, capsys):
    before = (finished / "per_class_val.csv").read_text()
    code, _out, _ = cli(["evaluate", finished], capsys)
    assert code == 0 and (finished / "per_class_val.csv").read_text() == before


def test_evaluate_after_a_class_vanished_names_it(finished, own_data, capsys):
    annotations = own_data / "val" / "val_annotations.txt"
    kept = [line for line in annotations.read_text().splitlines() if "synth0004" not in line]
    annotations.write_text("\n".join(kept) + "\n")
    code, _, err = cli(["evaluate", finished], capsys)
    assert code == 1 and one_line_error(err) and "synth0004" in err


# --- damaged files ---------------------------------------------------------------------------------


def _cache_entry(cache):
    entries = [e for e in cache.iterdir() if (e / "images.npy").is_file()]  # not the hash memo's folder
    return max(entries, key=lambda e: (e / "images.npy").stat().st_size)


@pytest.mark.parametrize("damage", ["truncate", "empty", "same-size"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_notice(synthetic_root, tmp_path, caplog, damage):
    from alexnet_tf.data import load_dataset

    cache = tmp_path / "cache"
    first, _, _ = load_dataset(synthetic_root, "train", classes=3, cache_dir=cache)
    path = _cache_entry(cache) / "images.npy"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(data[:-100] + bytes(100))
    again, _, _ = load_dataset(synthetic_root, "train", classes=3, cache_dir=cache)
    np.testing.assert_array_equal(again, first)
    assert any("damaged" in r.message and str(path.parent) in r.message for r in caplog.records)
    caplog.clear()
    load_dataset(synthetic_root, "train", classes=3, cache_dir=cache)
    assert not caplog.records  # rebuilt once, then served


@pytest.mark.parametrize("damage", ["truncated-weights", "empty-metadata"])
def test_a_broken_latest_backup_falls_back_to_the_epoch_before(interrupted, capsys, damage):
    config, folder = interrupted
    backup = folder / "backup"
    assert (backup / "previous.weights.h5").is_file()
    if damage == "truncated-weights":
        data = (backup / "latest.weights.h5").read_bytes()
        (backup / "latest.weights.h5").write_bytes(data[: len(data) // 3])
    else:
        (backup / "training_metadata.json").write_text("")
    capsys.readouterr()
    result = train(config, verbose=0)
    assert "resuming from the epoch before" in capsys.readouterr().out
    assert list(result.history["epoch"]) == [0, 1, 2] and result.metrics["resumed"]


def test_no_loadable_backup_names_the_files_and_the_way_out(interrupted, synthetic_root, tmp_path, capsys):
    _, folder = interrupted
    backup = folder / "backup"
    for name in ("latest.weights.h5", "previous.weights.h5"):
        (backup / name).write_bytes(b"\0" * 64)
    args = [
        "train",
        "--preset",
        "quick",
        "--data",
        synthetic_root,
        "--runs-dir",
        tmp_path / "runs",
        "--epochs",
        3,
        "--images-per-class",
        8,
    ]
    code, _, err = cli(args, capsys)
    assert code == 1 and one_line_error(err)
    assert "latest.weights.h5" in err and "previous.weights.h5" in err and f"Delete {backup}" in err


@pytest.mark.parametrize("name", ["model.keras", "best.keras"])
def test_a_truncated_model_is_reported_as_corrupt_with_its_path(finished, capsys, name):
    from alexnet_tf.run_folder import load_saved_model

    path = finished / name
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=f"{path} is corrupt"):
        load_saved_model(path)
    if name == "model.keras":
        code, _, err = cli(["evaluate", finished], capsys)
        assert code == 1 and one_line_error(err) and f"{path} is corrupt" in err


# --- numeric options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option,value",
    [
        ("--learning-rate", "nan"),
        ("--learning-rate", "inf"),
        ("--momentum", "nan"),
        ("--weight-decay", "-1"),
        ("--image-size", "0"),
        ("--image-size", "-5"),
        ("--warmup-epochs", "-3"),
        ("--dropout", "1.5"),
        ("--label-smoothing", "nan"),
        ("--seed", "-1"),
    ],
)
def test_numeric_options_are_range_checked_before_decoding(
    synthetic_root, tmp_path, capsys, monkeypatch, option, value
):
    from alexnet_tf import data

    monkeypatch.setattr(data, "load_images", lambda *a, **k: pytest.fail("images were decoded"))
    code, _, err = cli(
        ["train", "--preset", "quick", "--data", synthetic_root, "--runs-dir", tmp_path, option, value], capsys
    )
    assert code == 1 and one_line_error(err) and option in err
    assert not list(tmp_path.iterdir())


def test_warmup_must_fit_in_a_cosine_run():
    with pytest.raises(ValueError, match=r"warmup_epochs=6 \(--warmup-epochs\)"):
        preset("tiny200", epochs=5, warmup_epochs=6)
    assert preset("tiny200", epochs=1).warmup_epochs == 1  # a one-epoch run of the preset stays possible
