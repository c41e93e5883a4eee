import csv
import http.server
import os
import shutil
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from data_prep import (
    HashMismatchError,
    check,
    download,
    extract,
    flatten_train,
    make_subset,
    plan_subset,
    reorganise_val,
    tiny_imagenet,
)
from data_prep.__main__ import main as cli
from data_prep.download import file_sha256
from data_prep.tiny_imagenet import DataFormatError


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return Path(dst)


def snapshot(root):
    """Every original file with its size, to prove nothing was moved, changed or deleted."""
    return {str(p.relative_to(root)): p.stat().st_size for p in Path(root).rglob("*") if p.is_file()}


def zip_folder(root, zip_path):
    with zipfile.ZipFile(zip_path, "w") as z:
        for p in sorted(Path(root).rglob("*")):
            z.write(p, Path(root.name) / p.relative_to(root))
    return zip_path


# --- synthetic data -------------------------------------------------------------------------


def test_synthetic_layout_checks(synthetic_root):
    summary = check(synthetic_root)
    assert summary["train"] == {"classes": 10, "images": 600, "min_per_class": 60, "max_per_class": 60}
    assert summary["val"]["images"] == 100 and summary["val"]["min_per_class"] == 10
    assert summary["test"]["images"] == 20
    words = tiny_imagenet.read_words(synthetic_root)
    assert all(v.startswith("synthetic") for v in words.values())


def test_synthetic_is_deterministic(tmp_path):
    from data_prep import make_synthetic

    a = make_synthetic(tmp_path / "a", classes=3, train_per_class=5, val_per_class=2, test_images=1, seed=3)
    b = make_synthetic(tmp_path / "b", classes=3, train_per_class=5, val_per_class=2, test_images=1, seed=3)
    for f in sorted(a.rglob("*.JPEG")):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes()


# --- download -------------------------------------------------------------------------------


class _Server:
    """A loopback HTTP server over one folder; ``truncate`` sends only half of each file."""

    def __init__(self, folder, truncate=False):
        handler = partial(_TruncatingHandler if truncate else _QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Polled every 20 ms (not the default 0.5 s), so that shutdown returns at once.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _TruncatingHandler(_QuietHandler):
    def do_GET(self):
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True


@pytest.fixture(scope="module")
def served_zip(tmp_path_factory, synthetic_root):
    """A zip of the synthetic set (2 MB: a download of several 1 MB blocks): (folder, name, sha256).
    Always this one, even where the real zip is present: what the download tests check does not
    depend on the zip's size, and the real one (180 MB, 120,000 files) costs half a minute to send,
    hash, CRC-check and extract. The real zip's layout is checked by the test_real_* tests."""
    folder = tmp_path_factory.mktemp("served")
    name = zip_folder(synthetic_root, folder / "synthetic-tiny-imagenet.zip").name
    return folder, name, file_sha256(folder / name)


def test_download_over_http_end_to_end(served_zip, tmp_path):
    folder, name, sha = served_zip
    with _Server(folder) as url:
        got = download(f"{url}/{name}", tmp_path / "dl", sha256=sha, progress=False)
    assert got == tmp_path / "dl" / name and file_sha256(got) == sha
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == [f".{name}.source.json", name]  # and its record
    root = extract(got, tmp_path / "x")
    assert check(root)["train"]["classes"] == 10


def test_download_hash_mismatch_leaves_no_file(served_zip, tmp_path):
    folder, name, _ = served_zip
    with _Server(folder) as url, pytest.raises(HashMismatchError, match="sha256"):
        download(f"{url}/{name}", tmp_path, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_no_file(served_zip, tmp_path):
    folder, name, _ = served_zip
    with _Server(folder, truncate=True) as url, pytest.raises(Exception):  # noqa: B017 (a cut stream fails as OSError or as a bad zip, by Python version)
        download(f"{url}/{name}", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_accepts_local_zip_and_is_rerunnable(served_zip, tmp_path):
    folder, name, sha = served_zip
    first = download(folder / name, tmp_path, sha256=sha)
    mtime = first.stat().st_mtime_ns
    assert download(folder / name, tmp_path, sha256=sha).stat().st_mtime_ns == mtime


# --- extract and check ----------------------------------------------------------------------


def test_truncated_zip_is_a_clear_error(synthetic_root, tmp_path):
    whole = zip_folder(synthetic_root, tmp_path / "whole.zip").read_bytes()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match="broken.zip.*download it again"):
        extract(broken, tmp_path / "out")
    assert not (tmp_path / "out" / "synthetic-tiny-imagenet").exists()


def test_missing_val_annotations(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    (root / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataFormatError, match="val_annotations.txt is missing"):
        check(root)


def test_annotation_naming_missing_file(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    (root / "val" / "images" / "val_3.JPEG").unlink()
    with pytest.raises(DataFormatError, match=r"line 4: .*val_3.JPEG does not exist"):
        check(root)


def test_annotation_naming_unknown_wnid(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    path = root / "val" / "val_annotations.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(lines[1].split("\t")[1], "n99999999")
    path.write_text("".join(lines))
    with pytest.raises(DataFormatError, match="line 2: wnid 'n99999999' is not in wnids.txt"):
        check(root)


def test_malformed_annotation_line(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    with open(root / "val" / "val_annotations.txt", "a") as f:
        f.write("val_0.JPEG only-two-fields\n")
    with pytest.raises(DataFormatError, match="expected 6 tab-separated fields"):
        check(root)


def test_missing_train_class_folder(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    shutil.rmtree(root / "train" / "synth0003")
    with pytest.raises(DataFormatError, match=r"train[/\\]synth0003 is missing: class 'synth0003' has no train images"):
        check(root)


# --- reorganise -----------------------------------------------------------------------------


def test_reorganise_val_keeps_originals_and_is_idempotent(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    before = snapshot(root)
    assert reorganise_val(root) == 10
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before
    annotations = tiny_imagenet.read_val_annotations(root)
    for a in annotations:  # copies, not links: editing one never edits the other
        copy, original = root / "val" / a.wnid / a.file, root / "val" / "images" / a.file
        assert copy.read_bytes() == original.read_bytes() and not copy.samefile(original)
    assert reorganise_val(root) == 0 and snapshot(root) == after


def test_interrupted_reorganise_is_finished_by_rerun(synthetic_root, tmp_path):
    import subprocess
    import sys

    from data_prep.fsutil import temp_name

    root = copy_tree(synthetic_root, tmp_path / "d")
    killed = subprocess.Popen([sys.executable, "-c", ""])
    killed.wait()
    crashed = root / "val" / temp_name("synth0000", pid=killed.pid)  # what a killed run leaves behind
    crashed.mkdir()
    (crashed / "val_1.JPEG").write_bytes(b"partial")
    assert reorganise_val(root) == 10
    assert not any(p.name.startswith(".tmp-") for p in (root / "val").iterdir())
    counts = [len(list((root / "val" / w).iterdir())) for w in tiny_imagenet.read_wnids(root)]
    assert counts == [10] * 10


def test_flatten_train(synthetic_root, tmp_path):
    root = copy_tree(synthetic_root, tmp_path / "d")
    assert flatten_train(root) == 10
    assert len(list((root / "train_images" / "synth0001").glob("*.JPEG"))) == 60
    assert (root / "train" / "synth0001" / "images").is_dir()


def test_unwritable_output_folder(synthetic_root, tmp_path):
    if os.geteuid() == 0:
        locked = Path("/proc/alexnet-tf-test")  # root writes anywhere but under /proc
        with pytest.raises(PermissionError, match="cannot write to"):
            make_subset(synthetic_root, locked / "subset")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(PermissionError, match="cannot write to"):
        make_subset(synthetic_root, locked / "subset")


# --- subset ---------------------------------------------------------------------------------


def test_subset_first_n_with_split(synthetic_root, tmp_path):
    out = make_subset(synthetic_root, tmp_path / "s", classes="first:3", split="40/10/10", seed=1)
    rows = list(csv.DictReader((out / "manifest.csv").read_text().splitlines()))
    assert {r["wnid"] for r in rows} == {"synth0000", "synth0001", "synth0002"}
    per = {(r["wnid"], r["split"]) for r in rows}
    assert len(rows) == 180 and len(per) == 9
    sources = [r["source"] for r in rows]
    assert len(set(sources)) == len(sources)  # no image in two splits
    assert all((out / r["file"]).is_file() for r in rows)
    assert (out / "counts.csv").is_file()
    # re-running is a no-op, a different request into the same folder is refused
    assert make_subset(synthetic_root, out, classes="first:3", split="40/10/10", seed=1) == out
    with pytest.raises(FileExistsError):
        make_subset(synthetic_root, out, classes="first:4")


def test_subset_is_deterministic_and_seeded(synthetic_root):
    a = plan_subset(synthetic_root, "random:4", images_per_class=5, seed=7)
    assert a == plan_subset(synthetic_root, "random:4", images_per_class=5, seed=7)
    assert a != plan_subset(synthetic_root, "random:4", images_per_class=5, seed=8)


def test_subset_explicit_wnids_and_errors(synthetic_root):
    rows = plan_subset(synthetic_root, "synth0005,synth0002", images_per_class=3)
    assert [r["class_index"] for r in rows if r["split"] == "train"] == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="unknown class name"):
        plan_subset(synthetic_root, "n00000000")
    with pytest.raises(ValueError, match="images_per_class=999 but class"):
        plan_subset(synthetic_root, "first:2", images_per_class=999)


def test_cli_help_and_errors(synthetic_root, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["subset", "--help"])
    assert exit_.value.code == 0 and "--images-per-class" in capsys.readouterr().out
    assert cli(["check", str(synthetic_root / "missing")]) == 1
    assert "missing does not exist: give the dataset folder" in capsys.readouterr().err


# --- the real zip ---------------------------------------------------------------------------


def test_real_check(real_root):
    summary = check(real_root)
    assert summary["train"] == {"classes": 200, "images": 80000, "min_per_class": 400, "max_per_class": 400}
    assert summary["val"] == {"classes": 200, "images": 10000, "min_per_class": 50, "max_per_class": 50}


def test_real_reorganise_val(real_root):
    reorganise_val(real_root)
    wnids = tiny_imagenet.read_wnids(real_root)
    folders = {w: sorted(p.name for p in (real_root / "val" / w).iterdir()) for w in wnids}
    assert len(folders) == 200 and all(len(v) == 50 for v in folders.values())
    labels = {a.file: a.wnid for a in tiny_imagenet.read_val_annotations(real_root)}
    assert {f: w for w, files in folders.items() for f in files} == labels
    assert len(list((real_root / "val" / "images").iterdir())) == 10000


def test_real_tiny10_subset(real_root, tmp_path):
    out = make_subset(real_root, tmp_path / "tiny10", classes="first:10")
    rows = list(csv.DictReader((out / "manifest.csv").read_text().splitlines()))
    wnids = sorted({r["wnid"] for r in rows})
    assert wnids[:3] == ["n01443537", "n01629819", "n01641577"] and wnids[-1] == "n01774750"
    assert sum(r["split"] == "train" for r in rows) == 4000 and sum(r["split"] == "val" for r in rows) == 500
    assert next(r for r in rows if r["wnid"] == "n01443537")["words"] == "goldfish, Carassius auratus"
