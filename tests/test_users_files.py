"""Nothing of the user's is touched: every input's hash is the same after each command, whether it
succeeds or is refused. Crafted zips are made here, from a small copy of the real data."""

import errno
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tf.training import train
from conftest import cli, tiny
from data_prep import fsutil, make_subset
from data_prep.__main__ import main as data_prep_main
from data_prep.images import DATASET_MAX_PIXELS, PHOTO_MAX_PIXELS


def hashes(*roots) -> dict:
    """sha256 of every file under ``roots`` (files or folders), by path."""
    found = {}
    for root in roots:
        root = Path(root)
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def zip_of(root: Path, zip_path: Path, prefix: str) -> Path:
    """``root``'s files in a zip, each member named ``prefix`` + its path inside ``root``."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as z:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            z.write(path, prefix + path.relative_to(root).as_posix())
    return zip_path


@pytest.fixture(scope="module")
def small_real(real_root, tmp_path_factory):
    """Ten classes of the real data, 12 train and 4 held-out images each, copied."""
    out = tmp_path_factory.mktemp("small") / "tiny10"
    return make_subset(real_root, out, classes="first:10", split="12/4/0")


@pytest.fixture(scope="module")
def runs(small_real, tmp_path_factory):
    """A finished 10-class run and a finished 5-class run of the small real copy."""
    folder = tmp_path_factory.mktemp("runs")
    ten = train(tiny(small_real, folder, name="ten", classes=10, images_per_class=None), verbose=0).run_dir
    five = train(tiny(small_real, folder, name="five", classes=5, images_per_class=None), verbose=0).run_dir
    return Path(ten), Path(five)


@pytest.fixture
def run_copy(runs, tmp_path):
    """A copy of the 10-class run folder, in a runs folder of its own."""
    return Path(shutil.copytree(runs[0], tmp_path / "runs" / "ten"))


# 1 --- a crafted zip never moves or writes anything outside the folder named on the command line


def test_a_zip_whose_folder_leads_outside_is_refused_before_anything_moves(small_real, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "thesis").mkdir(parents=True)
    (work / "thesis" / "ch1.tex").write_text("\\chapter{One}")
    (work / "thesis" / ".source.json").write_text("{}")  # the user's own file of that name
    slip = zip_of(small_real, tmp_path / "slip.zip", "../../thesis/")
    monkeypatch.chdir(work)
    before = hashes(work, slip)
    assert data_prep_main(["extract", str(slip), "--out", "data"]) == 1
    err = capsys.readouterr().err
    assert "leads outside the folder it is extracted into, e.g. '../../thesis/" in err and err.count("\n") == 1
    assert data_prep_main(["download", "--source", str(slip), "--out", "dl"]) == 1
    assert "leads outside" in capsys.readouterr().err
    assert hashes(work, slip) == before  # every file as it was, and no new file under work/


def test_an_absolute_member_is_refused_too(small_real, tmp_path, capsys):
    crafted = zip_of(small_real, tmp_path / "abs.zip", "tiny10/")
    with zipfile.ZipFile(crafted, "a") as z:
        z.writestr(str(tmp_path / "elsewhere.txt"), "x")
    assert data_prep_main(["extract", str(crafted), "--out", str(tmp_path / "data")]) == 1
    assert "leads outside" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.txt").exists() and not (tmp_path / "data").exists()


# 2 --- a model is checked against its record before it is used


def test_another_models_file_is_refused_and_nothing_is_rewritten(runs, run_copy, small_real, capsys):
    shutil.copy(runs[1] / "model.keras", run_copy / "model.keras")  # the 5-class run's model
    before = hashes(run_copy)
    code, _, err = cli(["evaluate", run_copy, "--split", "val"], capsys)
    assert code == 1 and "is not the model this run saved" in err and str(run_copy / "model.keras") in err
    image = next(small_real.rglob("*.JPEG"))
    code, _, err = cli(["predict", run_copy, image], capsys)
    assert code == 1 and "is not the model this run saved" in err
    assert hashes(run_copy) == before


def test_a_run_made_before_the_record_is_checked_by_class_count(runs, run_copy, capsys):
    shutil.copy(runs[1] / "model.keras", run_copy / "model.keras")
    (run_copy / "models.json").unlink()
    config = json.loads((run_copy / "config.json").read_text())
    del config["run_format"]  # as a run made before models.json
    (run_copy / "config.json").write_text(json.dumps(config))
    before = hashes(run_copy)
    code, _, err = cli(["evaluate", run_copy], capsys)
    assert code == 1 and "has classes 5, but the run" in err and "has 10" in err
    assert hashes(run_copy) == before


def test_a_new_run_without_its_record_is_refused(run_copy, capsys):
    (run_copy / "models.json").unlink()
    code, _, err = cli(["evaluate", run_copy], capsys)
    assert code == 1 and "has no models.json, which this run wrote" in err


def test_each_model_file_is_recorded(runs):
    records = json.loads((runs[0] / "models.json").read_text())
    assert records["model.keras"]["sha256"] == fsutil.file_sha256(runs[0] / "model.keras")
    assert records["model.keras"]["classes"] == 10 and records["model.keras"]["input_shape"] == [64, 64, 3]
    assert set(records) <= {"model.keras", "best.keras"}
    if (runs[0] / "best.keras").is_file():
        assert records["best.keras"]["sha256"] == fsutil.file_sha256(runs[0] / "best.keras")
    assert json.loads((runs[0] / "config.json").read_text())["run_format"] == 2


# 3 --- download never keeps another zip in place of the one asked for, nor replaces it


def test_download_refuses_a_different_zip_already_there(small_real, tmp_path, capsys):
    source = zip_of(small_real, tmp_path / "src" / "tiny-imagenet-200.zip", "tiny-imagenet-200/")
    five = make_subset(small_real, tmp_path / "five", classes="first:5")
    data = tmp_path / "data"
    data.mkdir()
    other = zip_of(five, data / "tiny-imagenet-200.zip", "tiny-imagenet-200/")  # the user's 5-class copy
    before = hashes(data, source)
    assert data_prep_main(["download", "--source", str(source), "--out", str(data)]) == 1
    err = capsys.readouterr().err
    assert f"{other} already exists and is not {source}" in err and "move it away" in err
    sha = fsutil.file_sha256(source)
    assert data_prep_main(["download", "--source", str(source), "--out", str(data), "--sha256", sha]) == 1
    assert "already exists" in capsys.readouterr().err
    assert hashes(data, source) == before
    # The same zip there already is used as it is.
    same = tmp_path / "same"
    same.mkdir()
    shutil.copy(source, same / source.name)
    assert data_prep_main(["download", "--source", str(source), "--out", str(same)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(same / source.name))


# 4 --- the project's copies share no storage with files the user may edit


def test_editing_a_subset_image_leaves_the_original_as_it_was(small_real, tmp_path):
    before = hashes(small_real)
    sub = make_subset(small_real, tmp_path / "sub", classes="first:2")
    image = next((sub / "train").rglob("*.JPEG"))
    with Image.open(image) as img:
        edited = img.convert("L").convert("RGB")
    edited.save(image)  # in place, as an image editor does
    assert hashes(small_real) == before
    linked = make_subset(small_real, tmp_path / "linked", classes="first:2", link=True)  # what --link promises
    row = next(r for r in (linked / "manifest.csv").read_text().splitlines()[1:])
    file, source = row.split(",")[0], row.split(",")[-1]
    assert (linked / file).samefile(small_real / source)


# 5 --- evaluate --export never writes over a file


def test_export_refuses_an_existing_file(run_copy, tmp_path, capsys):
    thesis = tmp_path / "thesis.h5"
    thesis.write_bytes(b"my work")
    before = hashes(run_copy, thesis)
    for target in (thesis, run_copy / "best.keras", run_copy / "model.keras"):
        if not target.exists():
            continue
        code, _, err = cli(["evaluate", run_copy, "--export", target], capsys)
        assert code == 1 and f"{target} already exists and is left as it is" in err
    assert hashes(run_copy, thesis) == before
    code, _, err = cli(["evaluate", run_copy, "--export", tmp_path / "model.txt"], capsys)
    assert code == 1 and "give a path ending in .keras, .h5, .hdf5" in err
    code, _, _ = cli(["evaluate", run_copy, "--export", tmp_path / "new.h5"], capsys)
    assert code == 0 and (tmp_path / "new.h5").stat().st_size > 0


# 6 --- images over the pixel bound are refused from their header, naming the file


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """A 13000x13000 16-bit PNG of a few hundred KB (2 GB when decoded)."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        Image.new("I;16", (13000, 13000)).save(path)
    return path


def test_a_huge_image_in_a_dataset_is_refused_in_bounded_memory(small_real, huge_png, tmp_path):
    root = Path(shutil.copytree(small_real, tmp_path / "d"))
    target = next((root / "train").iterdir()) / "huge.JPEG"
    shutil.copy(huge_png, target)
    probe = (
        "import resource, subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-m', 'data_prep', 'check', '--decode', {str(root)!r}], "
        "capture_output=True, text=True)\n"
        "print(r.returncode); print(r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    code, *stderr, peak_kib = out.strip().splitlines()
    stderr = "\n".join(stderr)
    assert code == "1" and f"image {target} is 13000x13000 pixels, over this project's bound" in stderr
    assert f"{DATASET_MAX_PIXELS:,}" in stderr and "DecompressionBomb" not in stderr
    assert int(peak_kib) < 1.5 * 2**20, f"peak {int(peak_kib) / 2**20:.2f} GB"


def test_predict_takes_a_large_photo_and_refuses_a_huge_one(runs, huge_png, tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.zeros((3000, 4000, 3), np.uint8)).save(photo)
    code, out, _ = cli(["predict", runs[0], photo], capsys)
    assert code == 0 and str(photo) in out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of Pillow's reaches the user
        code, _, err = cli(["predict", runs[0], huge_png], capsys)
    assert code == 1 and str(huge_png) in err and f"{PHOTO_MAX_PIXELS:,} pixels" in err


# 7 --- a full disk names the folder being written


def test_a_full_disk_under_download_names_the_output_folder_not_the_source(small_real, tmp_path, monkeypatch, capsys):
    source = zip_of(small_real, tmp_path / "src" / "tiny-imagenet-200.zip", "tiny-imagenet-200/")

    def full(src, dst, link=False):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))  # as a copy's error may name its source

    monkeypatch.setattr(
        importlib.import_module("data_prep.download"), "copy_file", full
    )  # the module, not the function
    assert data_prep_main(["download", "--source", str(source), "--out", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'data'}: out of disk space") and str(source) not in err


def test_a_full_disk_at_the_final_save_names_the_run_folder(small_real, tmp_path, monkeypatch, capsys):
    from alexnet_tf.run_folder import RunFolder

    def full(self, model):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunFolder, "save_model", full)
    args = ["train", "--preset", "quick", "--data", small_real, "--epochs", "1", "--images-per-class", "none"]
    code, _, err = cli([*args, "--runs-dir", tmp_path / "runs", "--name", "r", "--verbose", "line"], capsys)
    assert code == 1 and f"{tmp_path / 'runs' / 'r'}: out of disk space" in err and "the disk" not in err


# 8 --- history.csv holds each epoch once after a resume


def test_history_holds_each_epoch_once_after_a_resume(small_real, tmp_path):
    import keras

    class StopAfterSecond(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    config = tiny(small_real, tmp_path / "runs", name="r", epochs=3, classes=3, images_per_class=None)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[StopAfterSecond()], verbose=0)
    history = tmp_path / "runs" / "r" / "history.csv"
    lines = history.read_text().splitlines()
    # An epoch whose row was written but whose backup was not (a full disk between the two).
    fake = "2," + ",".join(["0.5"] * (len(lines[0].split(",")) - 1))
    history.write_text("\n".join([*lines, fake]) + "\n")
    train(config, verbose=0)
    rows = history.read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["0", "1", "2"] and rows[2] != fake  # epoch 3 once: its redo


def test_fsutil_refuses_what_it_must_not_overwrite(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("mine")
    with pytest.raises(FileExistsError, match="mine.txt already exists and is left as it is"):
        fsutil.write_text_atomically(mine, "other", new=True)
    assert mine.read_text() == "mine"
    with pytest.raises(ValueError, match="leads outside"):
        fsutil.confined(tmp_path / "a" / ".." / ".." / "x", tmp_path / "a", "a path")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "link").symlink_to(tmp_path / "mine.txt")
    with pytest.raises(ValueError, match="leads outside"):
        fsutil.confined(tmp_path / "a" / "link", tmp_path / "a", "a symlink")
    assert fsutil.move_aside(mine) == tmp_path / "mine.txt.old" and (tmp_path / "mine.txt.old").read_text() == "mine"


def test_a_runs_metrics_record_the_code_and_machine_that_made_them(runs, tmp_path):
    import keras

    from alexnet_tf.hardware import code_version

    code = json.loads((runs[0] / "metrics.json").read_text())["code"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    if head.returncode == 0:  # a git checkout (not an unpacked copy of the project)
        assert code["commit"] == head.stdout.strip() and isinstance(code["uncommitted_changes"], bool)
    assert code["versions"]["keras"] == keras.__version__ and code["versions"]["numpy"] == np.__version__
    assert code["versions"]["python"].count(".") == 2 and keras.backend.backend() in code["versions"]
    assert code["processor"]
    # Outside a checkout (a pip install), the package's version stands for the commit.
    assert set(code_version(tmp_path)) == {"package_version"}
    config = json.loads((runs[0] / "config.json").read_text())
    assert "code" not in config  # not part of the run's identity
