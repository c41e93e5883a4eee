"""Bad input on the data side: a clear error naming the file or value, or the right result;
never a silent wrong label, a file that looks good but is not, or a traceback."""

import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tf.data import decode_image, load_dataset, select_files
from data_prep import check, download, extract, fsutil, make_subset, make_synthetic, reorganise_val, tiny_imagenet
from data_prep.__main__ import main as cli
from data_prep.download import file_sha256
from data_prep.tiny_imagenet import DataFormatError

extract_module = importlib.import_module("data_prep.extract")  # the package's name 'extract' is the function

REPO = Path(__file__).resolve().parents[1]


def tree_hashes(root):
    """sha256 of every file under ``root``: proof that nothing the user had was changed."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


def copy_tree(src, dst):
    return Path(shutil.copytree(src, dst))


def zip_folder(root, zip_path, prefix=""):
    """Zip ``root`` as ``<prefix><root name>/...`` (the official zip has one top folder)."""
    root = Path(root)
    with zipfile.ZipFile(zip_path, "w") as z:
        for p in sorted(root.rglob("*")):
            z.write(p, f"{prefix}{root.name}/{p.relative_to(root).as_posix()}")
    return Path(zip_path)


def dead_pid():
    """The id of a process that has ended (what an interrupted run's temporary names carry)."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """A tiny synthetic dataset, cheap to zip, copy and rebuild."""
    return make_synthetic(
        tmp_path_factory.mktemp("small"), classes=3, train_per_class=4, val_per_class=2, test_images=2
    )


@pytest.fixture(scope="module")
def good_zip(small_root, tmp_path_factory):
    return zip_folder(small_root, tmp_path_factory.mktemp("zips") / "tiny-imagenet-200.zip")


# --- a labelled split never yields placeholder labels ---------------------------------------

MISSING_ANNOTATIONS = r"val[/\\]val_annotations\.txt is missing.*data_prep extract.*val/<class>/"


def test_val_without_annotations_is_an_error_for_every_loader(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    (root / "val" / "val_annotations.txt").unlink()
    before = tree_hashes(root)
    names = tiny_imagenet.dataset_classes(root)
    with pytest.raises(DataFormatError, match=MISSING_ANNOTATIONS):
        tiny_imagenet.split_files(root, "val", names)
    with pytest.raises(DataFormatError, match=MISSING_ANNOTATIONS):
        select_files(root, "val", classes=2)
    with pytest.raises(DataFormatError, match=MISSING_ANNOTATIONS):
        load_dataset(root, "val", cache=False)
    with pytest.raises(DataFormatError, match=MISSING_ANNOTATIONS):
        tiny_imagenet.split_is_labelled(root, "val")
    assert tree_hashes(root) == before


def test_data_prep_steps_refuse_val_without_annotations(synthetic_root, tmp_path, capsys):
    root = copy_tree(synthetic_root, tmp_path / "d")
    (root / "val" / "val_annotations.txt").unlink()
    before = tree_hashes(root)
    missing = str(root / "val" / "val_annotations.txt")
    with pytest.raises(DataFormatError, match=MISSING_ANNOTATIONS):
        make_subset(root, tmp_path / "s", classes="first:2")
    for argv in (
        ["subset", str(root), "--out", str(tmp_path / "s"), "--classes", "first:2"],
        ["reorganise", str(root)],
        ["check", str(root)],
    ):
        assert cli(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and missing in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()
    assert tree_hashes(root) == before  # no val/<wnid>/ folders, nothing changed


def test_only_the_test_split_may_be_unlabelled(synthetic_root):
    files, labels = tiny_imagenet.split_files(synthetic_root, "test", tiny_imagenet.dataset_classes(synthetic_root))
    assert len(files) == 20 and set(labels) == {-1}
    assert tiny_imagenet.split_is_labelled(synthetic_root, "test") is False
    assert tiny_imagenet.split_is_labelled(synthetic_root, "val") is True
    assert tiny_imagenet.split_is_labelled(synthetic_root, "train") is True
    with pytest.raises(ValueError, match="images_per_class needs labels"):
        select_files(synthetic_root, "test", images_per_class=2)


def test_flat_images_outside_test_are_not_labels(tmp_path):
    def images(folder, n):
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(folder / f"{i}.jpg")

    for cls in ("cat", "dog"):
        images(tmp_path / "train" / cls, 2)
    images(tmp_path / "val" / "images", 3)
    images(tmp_path / "holdout" / "images", 3)
    images(tmp_path / "test" / "images", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=MISSING_ANNOTATIONS):
        select_files(tmp_path, "val")
    with pytest.raises(DataFormatError, match=r"holdout[/\\]images holds holdout images without labels"):
        select_files(tmp_path, "holdout")
    with pytest.raises(DataFormatError, match=r"empty has no class folders"):
        select_files(tmp_path, "empty")
    assert tiny_imagenet.split_is_labelled(tmp_path, "train")
    assert select_files(tmp_path, "test")[1].tolist() == [-1, -1, -1]


# --- download checks what it got --------------------------------------------------------------


def _bad_copy(good_zip, kind, path):
    data = good_zip.read_bytes()
    if kind == "half":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        path.write_text("this is not a zip\n")
    else:  # a complete zip, but of something other than Tiny ImageNet
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("holiday/photo.txt", "not a dataset")
    return path


@pytest.mark.parametrize(
    "kind, message",
    [("half", "is not a complete zip file"), ("text", "is not a complete zip file"), ("other", "holds no wnids.txt")],
)
def test_download_refuses_a_bad_zip_and_keeps_nothing(good_zip, tmp_path, capsys, kind, message):
    (tmp_path / "src").mkdir()
    source = _bad_copy(good_zip, kind, tmp_path / "src" / "tiny-imagenet-200.zip")
    before = file_sha256(source)
    out = tmp_path / "out"
    assert cli(["download", "--source", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(source) in err and message in err and len(err.splitlines()) == 1
    assert not out.exists() or list(out.iterdir()) == []  # neither the target nor a .part file
    assert file_sha256(source) == before


def test_download_refuses_a_member_that_fails_its_crc(small_root, tmp_path):
    source = tmp_path / "src" / "tiny-imagenet-200.zip"
    source.parent.mkdir()
    zip_folder(small_root, source)  # stored, not deflated: the member's bytes sit in the zip as they are
    member = min(small_root.rglob("*.JPEG")).read_bytes()
    data = bytearray(source.read_bytes())
    at = data.find(member) + len(member) // 2
    data[at] ^= 0xFF
    source.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"tiny-imagenet-200\.zip is corrupt: .* fails its CRC check"):
        download(source, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("with_sha", [False, True])
def test_download_replaces_a_bad_file_already_there(good_zip, tmp_path, with_sha):
    out = tmp_path / "out"
    out.mkdir()
    bad = _bad_copy(good_zip, "half", out / good_zip.name)  # what an earlier, unchecked run left
    before = file_sha256(bad)
    got = download(good_zip, out, sha256=file_sha256(good_zip) if with_sha else None)
    assert got == out / good_zip.name and file_sha256(got) == file_sha256(good_zip)
    # The broken file is moved aside, not deleted: it may be the user's.
    assert sorted(p.name for p in out.iterdir()) == [
        f".{good_zip.name}.source.json",
        good_zip.name,
        f"{good_zip.name}.old",
    ]
    assert file_sha256(out / f"{good_zip.name}.old") == before


def test_download_says_when_the_file_there_and_the_fresh_one_are_both_bad(good_zip, tmp_path):
    out, src = tmp_path / "out", tmp_path / "src"
    out.mkdir()
    src.mkdir()
    there = _bad_copy(good_zip, "text", out / "tiny-imagenet-200.zip")
    source = _bad_copy(good_zip, "half", src / "tiny-imagenet-200.zip")
    before = {there: file_sha256(there), source: file_sha256(source)}
    both_named = rf"{re.escape(str(source))} is not a complete zip.*; also {re.escape(str(there))}, already there"
    with pytest.raises(DataFormatError, match=both_named):
        download(source, out)
    assert {p: file_sha256(p) for p in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["tiny-imagenet-200.zip"]


def test_download_of_a_bad_file_onto_itself_is_an_error_and_keeps_it(good_zip, tmp_path):
    bad = _bad_copy(good_zip, "half", tmp_path / "tiny-imagenet-200.zip")
    before = file_sha256(bad)
    with pytest.raises(DataFormatError, match="tiny-imagenet-200.zip is not a complete zip file"):
        download(bad, tmp_path)
    assert file_sha256(bad) == before


# --- interrupted steps, folder modes, odd zips, odd images ----------------------------------


def test_stale_temps_are_removed_and_live_ones_kept(small_root, good_zip, tmp_path):
    gone = dead_pid()
    folder = tmp_path / "data"
    folder.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = sorted([".tmp-mine", fsutil.temp_name("subset", pid=live.pid)])  # the user's; a live run's
        for name in kept:
            (folder / name).mkdir()
        # What an older version left: not of our temporary names, so it may be the user's and stays.
        (folder / "tiny-imagenet-200.zip.part").write_bytes(b"partial")
        kept = sorted([*kept, "tiny-imagenet-200.zip.part"])
        for step in (
            lambda: download(good_zip, folder),
            lambda: extract(good_zip, folder),
            lambda: make_subset(small_root, folder / "sub", classes="first:2"),
            lambda: make_synthetic(folder, classes=2, train_per_class=2, val_per_class=1, test_images=1),
        ):
            (folder / fsutil.temp_name("extract", pid=gone) / "half").mkdir(parents=True)
            (folder / fsutil.temp_name("tiny-imagenet-200.zip", ".part", pid=gone)).write_bytes(b"partial")
            step()
            assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-") or ".part" in p.name) == kept
    finally:
        live.kill()
        live.wait()


def test_new_folders_follow_the_umask(small_root, good_zip, tmp_path):
    old = os.umask(0o022)
    try:
        syn = make_synthetic(tmp_path / "a", classes=2, train_per_class=2, val_per_class=1, test_images=1)
        sub = make_subset(small_root, tmp_path / "sub", classes="first:2")
        root = extract(good_zip, tmp_path / "x")
        reorganise_val(root)
        for folder in (syn, syn / "train", sub, sub / "train", root, root / "val" / "synth0000"):
            assert folder.stat().st_mode & 0o777 == 0o755, folder
        os.umask(0o002)
        syn = make_synthetic(tmp_path / "b", classes=2, train_per_class=2, val_per_class=1, test_images=1)
        assert syn.stat().st_mode & 0o777 == 0o775
    finally:
        os.umask(old)


def test_zip_with_the_dataset_one_folder_deeper(small_root, tmp_path):
    nested = zip_folder(small_root, tmp_path / "nested.zip", prefix="outer/")
    root = extract(nested, tmp_path / "x")
    assert root == tmp_path / "x" / small_root.name and check(root)["train"]["classes"] == 3
    assert download(nested, tmp_path / "dl") == tmp_path / "dl" / "nested.zip"


def test_zip_without_one_dataset_folder_is_named(small_root, tmp_path):
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("photos/a.txt", "x")
    with pytest.raises(DataFormatError, match=r"plain\.zip holds no wnids\.txt"):
        extract(plain, tmp_path / "x")
    two = zip_folder(small_root, tmp_path / "two.zip")
    with zipfile.ZipFile(two, "a") as z:
        z.writestr("copy/wnids.txt", "synth0000\n")
    with pytest.raises(DataFormatError, match=r"two\.zip holds 2 dataset folders \(copy, synthetic-tiny-imagenet\)"):
        extract(two, tmp_path / "x")
    assert not (tmp_path / "x").exists() or list((tmp_path / "x").iterdir()) == []


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    png = tmp_path / "deep.png"
    Image.fromarray(values).save(png)
    assert Image.open(png).mode.startswith("I")
    rgb = decode_image(png)
    expected = np.round(values / 257).astype(np.uint8)
    assert rgb.dtype == np.uint8 and all(np.array_equal(rgb[..., c], expected) for c in range(3))
    wide = tmp_path / "wide.tif"  # 32-bit integer pixels (mode "I") that are really 16-bit
    Image.fromarray(values.astype(np.int32)).save(wide)
    assert Image.open(wide).mode == "I" and np.array_equal(decode_image(wide)[..., 1], expected)


def test_images_without_an_8_bit_meaning_are_refused(tmp_path):
    huge = tmp_path / "huge.tif"
    Image.fromarray(np.full((8, 8), 1 << 20, np.int32)).save(huge)
    with pytest.raises(DataFormatError, match=r"huge\.tif: mode I values span"):
        decode_image(huge)
    floats = tmp_path / "floats.tif"
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(floats)
    with pytest.raises(DataFormatError, match=r"floats\.tif: floating-point pixels"):
        decode_image(floats)


def test_check_decode_names_every_bad_image(small_root, tmp_path, capsys):
    root = copy_tree(small_root, tmp_path / "d")
    assert cli(["check", str(root), "--decode"]) == 0
    bad = sorted(root.rglob("*.JPEG"))[:3]
    for f in bad:
        f.write_bytes(f.read_bytes()[:100])
    before = tree_hashes(root)
    capsys.readouterr()
    assert cli(["check", str(root), "--decode"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(sum(str(f) in line for line in lines[:3]) == 1 for f in bad)
    assert lines[-1].startswith("error: 3 of 20 images") and "remove those files" in lines[-1]
    assert tree_hashes(root) == before


def test_check_decode_lists_twenty_and_counts_the_rest(synthetic_root, tmp_path, capsys):
    root = copy_tree(synthetic_root, tmp_path / "d")
    for f in sorted((root / "test" / "images").iterdir())[:15] + sorted((root / "val" / "images").iterdir())[:10]:
        f.write_bytes(b"junk")
    assert cli(["check", str(root), "--decode"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 22 and lines[20] == "... and 5 more" and lines[21].startswith("error: 25 of 720 images")


def test_closed_pipe_ends_quietly(small_root):
    proc = subprocess.Popen(
        [sys.executable, "-m", "data_prep", "check", str(small_root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # like "| head -1" that has already gone
    err = proc.stderr.read()
    assert proc.wait() in (0, 141) and err == ""


# --- processes sharing a data folder --------------------------------------------------------


def test_extract_when_another_process_finishes_first(good_zip, tmp_path, monkeypatch):
    out = tmp_path / "x"
    original = zipfile.ZipFile.extractall

    def racing(self, path=None, members=None, pwd=None):
        original(self, path, members, pwd)
        other = out / "other-process"
        original(self, other, members, pwd)
        # It records its zip and renames first.
        (other / "synthetic-tiny-imagenet" / ".source.json").write_text(
            json.dumps(extract_module._zip_identity(good_zip))
        )
        (other / "synthetic-tiny-imagenet").rename(out / "synthetic-tiny-imagenet")
        other.rmdir()

    monkeypatch.setattr(zipfile.ZipFile, "extractall", racing)
    root = extract(good_zip, out)
    assert root == out / "synthetic-tiny-imagenet" and check(root)["train"]["images"] == 12
    assert sorted(p.name for p in out.iterdir()) == ["synthetic-tiny-imagenet"]


def test_make_synthetic_when_another_process_finishes_first(tmp_path, monkeypatch):
    from data_prep import synthetic

    original, raced = synthetic.draw_pattern, []

    def racing(*args, **kwargs):
        if not raced:
            raced.append(True)
            make_synthetic(tmp_path, classes=2, train_per_class=2, val_per_class=1, test_images=1)
        return original(*args, **kwargs)

    monkeypatch.setattr(synthetic, "draw_pattern", racing)
    root = make_synthetic(tmp_path, classes=2, train_per_class=2, val_per_class=1, test_images=1)
    assert raced and check(root)["train"]["images"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic-tiny-imagenet"]


RACER = """
import pathlib, sys, time
from data_prep import extract, make_synthetic
go, step, out = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
if step == "extract":
    print(extract(sys.argv[4], out))
else:
    print(make_synthetic(out, classes=3, train_per_class=30, val_per_class=5, test_images=5))
"""


def test_two_processes_share_one_data_folder(synthetic_root, tmp_path):
    zip_path = zip_folder(synthetic_root, tmp_path / "tiny.zip")
    go = tmp_path / "go"
    argv = [["extract", str(tmp_path / "x"), str(zip_path)]] * 2 + [["synthetic", str(tmp_path / "s")]] * 2
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(go), *a],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in argv
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()  # all start at once
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    roots = [tmp_path / "x" / "synthetic-tiny-imagenet"] * 2 + [tmp_path / "s" / "synthetic-tiny-imagenet"] * 2
    assert [out.strip() for out, _ in outputs] == [str(r) for r in roots]
    assert check(tmp_path / "x" / "synthetic-tiny-imagenet")["train"]["images"] == 600
    assert check(tmp_path / "s" / "synthetic-tiny-imagenet")["train"]["images"] == 90
    for folder in (tmp_path / "x", tmp_path / "s"):
        assert [p.name for p in folder.iterdir()] == ["synthetic-tiny-imagenet"]


# --- every user error is one line ----------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["subset", "{root}", "--out", "{out}", "--classes", "2", "--split", "abc"],
            "split 'abc' must be 'train/val/test'",
        ),
        (["subset", "{root}", "--out", "{out}", "--classes", "random:x"], "classes='random:x': 'x' is not a number"),
        (["subset", "{root}", "--out", "{out}", "--classes", "first:"], "classes='first:': '' is not a number"),
        (["subset", "{root}", "--out", "{out}", "--classes", ","], "classes is empty"),
        (["subset", "{file}", "--out", "{out}"], "{file} is a file, not a folder"),
        (["check", "{file}"], "{file} is a file, not a folder"),
        (["reorganise", "{file}"], "{file} is a file, not a folder"),
        (["extract", "{file}", "--out", "{out}"], "{file} is not a complete zip file"),
        (["download", "--source", "{zip}", "--out", "{out}", "--sha256", "xyz"], "sha256 'xyz' is not a sha256 hash"),
        (["synthetic", "--out", "{out}", "--train-per-class", "0"], "train_per_class=0"),
    ],
)
def test_cli_user_errors_are_one_line(small_root, good_zip, tmp_path, capsys, argv, expected):
    note = tmp_path / "notes.txt"
    note.write_text("not a dataset")
    values = {"root": str(small_root), "out": str(tmp_path / "out"), "file": str(note), "zip": str(good_zip)}
    assert cli([a.format(**values) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected.format(**values) in err, err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_module_exits_1_with_one_line(tmp_path):
    note = tmp_path / "notes.txt"
    note.write_text("not a dataset")
    proc = subprocess.run(
        [sys.executable, "-m", "data_prep", "check", str(note)], cwd=REPO, capture_output=True, text=True
    )
    assert (
        proc.returncode == 1
        and proc.stderr
        == f"error: {note} is a file, not a folder: give the extracted dataset folder, e.g. data/tiny-imagenet-200\n"
    )
