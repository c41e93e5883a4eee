"""Every pixel served is the file's own: a JPEG cut short is refused and named, the decode cache is
keyed by the files' content, and images shared between splits are named by ``check`` and refused
by ``train`` unless accepted. On small copies of the real Tiny ImageNet where it matters (skipped
without the zip), on generated JPEGs for the other kinds of file."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tf.config import TrainConfig
from alexnet_tf.data import load_data, load_images
from alexnet_tf.run_folder import manifest_rows
from conftest import cli, tiny
from data_prep import check, images, make_subset, reorganise_val, tiny_imagenet
from data_prep.__main__ import main as data_prep_cli
from data_prep.images import decode_image, file_hashes
from data_prep.tiny_imagenet import DataFormatError

CLASSES = ("n01443537", "n01629819", "n01641577")  # the first three wnids: no image in two splits


def copy_real(real_root, dest, per_class=None, classes=CLASSES):
    """A copy (not links: the tests edit it) of a few classes of the real dataset, in its own layout:
    ``per_class`` train images a class (None: all), their val images, no test split."""
    dest = Path(dest)
    for wnid in classes:
        target = dest / "train" / wnid / "images"
        target.mkdir(parents=True)
        for f in tiny_imagenet.list_images(real_root / "train" / wnid / "images")[:per_class]:
            shutil.copy2(f, target / f.name)
    (dest / "val" / "images").mkdir(parents=True)
    lines = [
        line
        for line in (real_root / "val" / "val_annotations.txt").read_text().splitlines()
        if line.split("\t")[1] in classes
    ]
    for line in lines:
        shutil.copy2(real_root / "val" / "images" / line.split("\t")[0], dest / "val" / "images")
    (dest / "val" / "val_annotations.txt").write_text("".join(f"{line}\n" for line in lines))
    (dest / "wnids.txt").write_text("".join(f"{w}\n" for w in classes))
    words = tiny_imagenet.read_words(real_root, list(classes))
    (dest / "words.txt").write_text("".join(f"{w}\t{words[w]}\n" for w in classes))
    return dest


def cut_short(path, keep=0.6):
    """Cut ``path`` at ``keep`` of its bytes and close it with the JPEG end marker, as a copy broken
    off mid-write and "repaired" would be."""
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)] + b"\xff\xd9")


def pil_decodes(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


# --- a JPEG cut short ------------------------------------------------------------------------


def test_a_real_jpeg_cut_short_is_refused_by_the_loader_and_check(real_root, tmp_path, capsys):
    root = copy_real(real_root, tmp_path / "d", per_class=20)
    bad = root / "train" / CLASSES[1] / "images" / f"{CLASSES[1]}_1.JPEG"
    cut_short(bad)
    # What made it silent: Pillow decodes the cut file without a word, its lower part flat grey.
    grey = pil_decodes(bad)
    assert (grey[-8:] == 128).all() and not (grey[:8] == 128).all()

    with pytest.raises(DataFormatError, match=rf"cannot decode image .*{bad.name}: the file is cut short"):
        decode_image(bad)
    files, _, _ = images.select_files(root, "train")
    with pytest.raises(DataFormatError, match=rf"{bad.name}: the file is cut short"):
        load_images(files, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not cache_entries(tmp_path / "cache")  # no images cached

    assert data_prep_cli(["check", str(root)]) == 0  # the layout is fine ...
    capsys.readouterr()
    assert data_prep_cli(["check", str(root), "--decode"]) == 1  # ... the pixels are not
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and str(bad) in err[0] and "cut short" in err[0]
    assert err[1].startswith("error: 1 of ") and "do not decode" in err[1]


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.6, 0.9, 0.98])
def test_real_jpegs_cut_anywhere_are_refused_and_whole_ones_pass(real_root, tmp_path, keep):
    originals = tiny_imagenet.list_images(real_root / "train" / CLASSES[2] / "images")[:25]
    originals += tiny_imagenet.list_images(real_root / "val" / "images")[:25]
    for original in originals:
        decode_image(original)  # whole: accepted
        copy = tmp_path / original.name
        shutil.copy(original, copy)
        cut_short(copy, keep)
        with pytest.raises(DataFormatError, match="cut short|cannot decode"):
            decode_image(copy)


def test_a_real_jpeg_one_byte_short_is_refused(real_root, tmp_path):
    for original in tiny_imagenet.list_images(real_root / "train" / CLASSES[0] / "images")[:40]:
        content = original.read_bytes()
        copy = tmp_path / original.name
        copy.write_bytes(content[:-3] + content[-2:])  # the last byte before the end marker gone
        with pytest.raises(DataFormatError, match="cut short"):
            decode_image(copy)


def _jpeg(path, mode="RGB", size=(80, 96), **options):
    rng = np.random.default_rng(len(options) + len(mode))
    pixels = rng.normal(128, 50, (size[1], size[0], 3)).clip(0, 255).astype(np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, "JPEG", quality=90, **options)
    return path


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {}),
        ("L", {}),
        ("CMYK", {}),
        ("RGB", {"progressive": True}),
        ("RGB", {"optimize": True}),
        ("RGB", {"subsampling": 0}),
        ("RGB", {"restart_marker_blocks": 2}),
        ("L", {"restart_marker_rows": 1}),
    ],
)
def test_other_kinds_of_jpeg_whole_pass_and_cut_anywhere_are_refused(tmp_path, mode, options):
    whole = _jpeg(tmp_path / "whole.jpg", mode, **options)
    assert decode_image(whole).shape == (64, 64, 3)
    content = whole.read_bytes()
    scan = content.rfind(b"\xff\xda")  # the last scan; cuts in the headers fail in Pillow anyway
    for cut in range(scan + 20, len(content) - 2, 7):
        broken = tmp_path / "cut.jpg"
        broken.write_bytes(content[:cut] + b"\xff\xd9")
        with pytest.raises(DataFormatError, match=r"cut\.jpg"):
            decode_image(broken)


def test_stray_bytes_after_the_end_marker_and_fill_bytes_before_it_are_not_a_cut(tmp_path):
    content = _jpeg(tmp_path / "a.jpg").read_bytes()
    pixels = decode_image(tmp_path / "a.jpg")
    for variant in (content + b"\x00" * 40, content[:-2] + b"\xff\xff\xff\xd9"):
        (tmp_path / "b.jpg").write_bytes(variant)
        np.testing.assert_array_equal(decode_image(tmp_path / "b.jpg"), pixels)


# --- the cache is keyed by content -----------------------------------------------------------


def cache_entries(cache):
    """The decode cache's entries: not its temporary files, nor the hash memo's folder."""
    return [e for e in cache.iterdir() if not e.name.startswith(".") and e.name != "hashes"]


def test_an_image_edited_in_place_with_its_size_and_time_kept_is_served_new(real_root, tmp_path):
    root = copy_real(real_root, tmp_path / "d", per_class=60, classes=CLASSES[:1])
    files, _, _ = images.select_files(root, "train")
    by_size = {}
    for f in files:
        by_size.setdefault(f.stat().st_size, []).append(f)
    edited, other = next(group for group in by_size.values() if len(group) >= 2)[:2]
    assert edited.read_bytes() != other.read_bytes()
    cache = tmp_path / "cache"
    first = load_images(files, cache_dir=cache)
    np.testing.assert_array_equal(load_images(files, cache_dir=cache), first)  # served from the cache

    stat = edited.stat()
    edited.write_bytes(other.read_bytes())  # new pixels, the same number of bytes ...
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and its time put back
    assert (edited.stat().st_size, edited.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)

    again = load_images(files, cache_dir=cache)
    index = files.index(edited)
    np.testing.assert_array_equal(again[index], decode_image(other))
    assert not np.array_equal(again[index], first[index])
    np.testing.assert_array_equal(np.delete(again, index, 0), np.delete(first, index, 0))
    assert len(cache_entries(cache)) == 2


def test_an_image_edited_in_place_is_hashed_anew_though_its_hash_is_memoised(real_root, tmp_path, monkeypatch):
    """The memo keys a hash by inode, size, mtime and ctime: the edit changes the ctime, which no
    ``utime`` can restore. With the racy window shut, only that can tell the edit."""
    monkeypatch.setattr(images.HashMemo, "RACY_NS", 0)
    root = copy_real(real_root, tmp_path / "d", per_class=60, classes=CLASSES[:1])
    files, _, _ = images.select_files(root, "train")
    edited, other = next(g for g in same_size_groups(files) if len(g) >= 2)[:2]
    memo = tmp_path / "memo"
    first = file_hashes(files, memo_dir=memo)
    calls = count_hashing(monkeypatch)
    assert file_hashes(files, memo_dir=memo) == first and calls == []  # the memo served every file

    stat = edited.stat()
    edited.write_bytes(other.read_bytes())
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = file_hashes(files, memo_dir=memo)
    assert calls == [str(edited)]
    assert again[files.index(edited)] == again[files.index(other)] != first[files.index(edited)]


def test_a_file_replaced_by_another_of_its_size_and_time_is_hashed_anew(tmp_path, monkeypatch):
    monkeypatch.setattr(images.HashMemo, "RACY_NS", 0)
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"1" * 100)
    b.write_bytes(b"2" * 100)
    first = file_hashes([a], memo_dir=tmp_path / "memo")
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))
    os.replace(b, a)  # another inode under the same name, with the same size and mtime
    assert file_hashes([a], memo_dir=tmp_path / "memo") == [(100, hashlib.sha256(b"2" * 100).hexdigest())] != first


def test_files_changed_just_before_they_were_hashed_are_hashed_each_time(tmp_path, monkeypatch):
    """A change within ``RACY_NS`` before the hashing may share its timestamps with a second change
    (within a filesystem's time step): such an entry is never trusted."""
    f = tmp_path / "new.jpg"
    f.write_bytes(b"x" * 10)
    file_hashes([f], memo_dir=tmp_path / "memo")
    calls = count_hashing(monkeypatch)
    file_hashes([f], memo_dir=tmp_path / "memo")
    assert calls == [str(f)]


def test_a_damaged_or_unwritable_hash_memo_only_means_hashing_again(tmp_path, monkeypatch):
    monkeypatch.setattr(images.HashMemo, "RACY_NS", 0)
    files = [tmp_path / f"{i}.jpg" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 50)
    truth = [(50, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files]
    memo = tmp_path / "memo"
    assert file_hashes(files, memo_dir=memo) == truth
    tables = sorted(memo.iterdir())
    for table in tables:
        table.write_text(table.read_text()[:-9])  # cut short
    calls = count_hashing(monkeypatch)
    assert file_hashes(files, memo_dir=memo) == truth and len(calls) == 3
    for table in tables:  # whole JSON, but entries of another shape
        memo_json = json.loads(table.read_text())
        memo_json["files"] = {name: [1, 2] if i % 2 else "1:2:x" for i, name in enumerate(memo_json["files"])}
        table.write_text(json.dumps(memo_json))
    assert file_hashes(files, memo_dir=memo) == truth and len(calls) == 6
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert file_hashes(files, memo_dir=blocked / "memo") == truth


def same_size_groups(files):
    by_size = {}
    for f in files:
        by_size.setdefault(f.stat().st_size, []).append(f)
    return list(by_size.values())


def count_hashing(monkeypatch) -> list:
    """The files ``file_hash`` reads from now on."""
    calls, real_hash = [], images.file_hash
    monkeypatch.setattr(images, "file_hash", lambda path: calls.append(str(path)) or real_hash(path))
    return calls


def test_the_cache_key_is_the_content_not_the_names(synthetic_root, tmp_path):
    copy = Path(shutil.copytree(synthetic_root, tmp_path / "elsewhere"))
    cache = tmp_path / "cache"
    a = images.load_dataset(synthetic_root, "train", classes=2, cache_dir=cache)[0]
    b = images.load_dataset(copy, "train", classes=2, cache_dir=cache)[0]
    np.testing.assert_array_equal(a, b)
    assert len(cache_entries(cache)) == 1  # the same bytes: the same entry


def data_manifest(data):
    """The manifest rows a run of ``data`` records (``RunFolder.start``)."""
    return [
        *manifest_rows(data.root, data.class_names, "train", data.train_files, data.y_train, data.train_hashes),
        *manifest_rows(data.root, data.class_names, data.val_split, data.val_files, data.y_val, data.val_hashes),
    ]


def test_a_run_hashes_each_file_once_for_the_cache_and_the_manifest(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_TF_CACHE", str(tmp_path / "cache"))  # no file hashed before
    calls = []
    real_hash = images.file_hash
    monkeypatch.setattr(images, "file_hash", lambda path: calls.append(str(path)) or real_hash(path))
    config = tiny(synthetic_root, tmp_path / "runs", classes=3)
    data = load_data(config)
    assert sorted(calls) == sorted(str(f) for f in [*data.train_files, *data.val_files])
    rows = data_manifest(data)
    assert len(calls) == len(rows)  # the manifest reads no file again
    for row in rows[:5] + rows[-5:]:
        content = (Path(data.root) / row["file"]).read_bytes()
        assert row["size"] == len(content) and row["sha256"] == hashlib.sha256(content).hexdigest()


def test_manifest_rows_hold_each_files_class_and_hash(synthetic_root):
    files, labels, names = images.select_files(synthetic_root, "train", classes=2)
    rows = manifest_rows(synthetic_root, names, "train", files, labels, file_hashes(files))
    assert [r["sha256"] for r in rows] == [digest for _, digest in file_hashes(files)]
    assert [r["wnid"] for r in rows] == [names[y] for y in labels] and {r["split"] for r in rows} == {"train"}
    unlabelled = manifest_rows(synthetic_root, names, "test", files[:1], [-1], file_hashes(files[:1]))
    assert unlabelled[0]["wnid"] == "" and unlabelled[0]["words"] == "" and unlabelled[0]["class_index"] == -1


# --- images shared between splits --------------------------------------------------------------


def share_val_images(root, count=10):
    """Copy ``count`` val images byte for byte into a train class folder, under train-style names."""
    val = tiny_imagenet.list_images(root / "val" / "images")[:count]
    target = root / "train" / CLASSES[0] / "images"
    copies = []
    for i, f in enumerate(val):
        copies.append(target / f"{CLASSES[0]}_{900 + i}.JPEG")
        shutil.copy(f, copies[-1])
    return val, copies


def test_check_names_the_images_two_splits_share(real_root, tmp_path, capsys):
    root = copy_real(real_root, tmp_path / "d", per_class=30)
    assert check(root).shared == {}
    val, copies = share_val_images(root)
    summary = check(root)
    assert list(summary.shared) == [("val", "train")]
    assert sorted(summary.shared[("val", "train")]) == sorted(zip(val, copies))

    assert data_prep_cli(["check", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[3].startswith("10 val image(s) are also train images (the same bytes)")  # after the table
    assert "--allow-shared-images" in out[3]
    assert out[4] == f"  val/images/{val[0].name} is train/{CLASSES[0]}/images/{copies[0].name}"
    assert len(out) == 10 and out[-1] == "  ... and 5 more"


def test_check_names_test_images_that_are_train_images(synthetic_root, tmp_path):
    root = Path(shutil.copytree(synthetic_root, tmp_path / "d"))
    test_image = min((root / "test" / "images").iterdir())
    train_image = min((root / "train" / "synth0004" / "images").iterdir())
    shutil.copy(train_image, test_image)
    assert check(root).shared == {("test", "train"): [(test_image, train_image)]}


def test_the_real_datasets_own_shared_images_are_named(real_root):
    shared = check(real_root).shared
    assert set(shared) <= {("val", "train"), ("test", "train"), ("test", "val")}
    for pairs in shared.values():
        assert all(a.read_bytes() == b.read_bytes() for a, b in pairs)


def test_train_refuses_shared_images_unless_accepted_and_records_the_count(real_root, tmp_path, capsys):
    root = copy_real(real_root, tmp_path / "d", per_class=12)
    val, copies = share_val_images(root, count=4)
    runs = tmp_path / "runs"
    config = tiny(root, runs, images_per_class=None, batch_size=16)
    with pytest.raises(DataFormatError) as refused:
        load_data(config)
    message = str(refused.value)
    assert message.startswith(f"4 of the {len(tiny_imagenet.list_images(root / 'val' / 'images'))} val images")
    assert f"val/images/{val[0].name} is train/{CLASSES[0]}/images/{copies[0].name}" in message
    assert "and 1 more" in message and "--allow-shared-images" in message

    argv = ["train", "--preset", "quick", "--data", root, "--runs-dir", runs, "--epochs", "1"]
    code, _, err = cli([*argv, "--images-per-class", "none"], capsys)
    assert code == 1 and err.startswith("error: 4 of the ") and err.count("\n") == 1
    assert not runs.exists() or not any(p.name == "config.json" for p in runs.rglob("*"))

    from alexnet_tf.training import train

    accepted = config.replace(allow_shared_images=True)
    result = train(accepted, verbose=0)
    assert "accepted by --allow-shared-images" in capsys.readouterr().out
    record = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert record["shared_images"] == 4 and record["allow_shared_images"] is True
    assert TrainConfig.from_json(json.dumps(record)).allow_shared_images  # a record key, not a setting


def test_an_old_config_without_the_option_loads_at_its_default(synthetic_root, tmp_path):
    record = json.loads(tiny(synthetic_root, tmp_path).to_json())
    del record["allow_shared_images"]
    assert TrainConfig.from_json(json.dumps(record)).allow_shared_images is False
    assert TrainConfig.from_json(json.dumps(record)).run_name == tiny(synthetic_root, tmp_path).run_name


# --- check reads every layout the loader reads ----------------------------------------------------


def test_check_accepts_the_folders_subset_writes(real_root, tmp_path, capsys):
    root = copy_real(real_root, tmp_path / "d", per_class=60)
    plain = make_subset(root, tmp_path / "tiny3", classes="first:3")
    summary = check(plain)
    assert summary["train"] == {"classes": 3, "images": 180, "min_per_class": 60, "max_per_class": 60}
    assert summary["val"] == {"classes": 3, "images": 150, "min_per_class": 50, "max_per_class": 50}
    assert summary.shared == {}
    split = make_subset(root, tmp_path / "split", classes="first:2", split="40/10/10")
    assert {s: v["images"] for s, v in check(split).items()} == {"train": 80, "val": 20, "test": 20}
    assert data_prep_cli(["check", str(split), "--decode"]) == 0
    assert "test         2      20         10         10" in capsys.readouterr().out
    # and what train and evaluate read: reorganised val, and class folders without wnids.txt
    reorganise_val(root)
    assert check(root)["val"]["images"] == 150  # the originals only, not their class-folder copies
    (plain / "wnids.txt").unlink()
    (plain / "words.txt").unlink()
    assert check(plain)["train"]["classes"] == 3


def test_check_still_names_what_a_subset_folder_lacks(real_root, tmp_path):
    root = copy_real(real_root, tmp_path / "d", per_class=10)
    out = make_subset(root, tmp_path / "s", classes="first:3")
    shutil.rmtree(out / "train" / CLASSES[2])
    with pytest.raises(DataFormatError, match=rf"train[/\\]{CLASSES[2]} is missing"):
        check(out)


# --- subset --split names the counts given ---------------------------------------------------------


def test_a_split_larger_than_the_classes_names_its_counts_and_what_they_hold(real_root, tmp_path, capsys):
    out = tmp_path / "split"
    argv = ["subset", str(real_root), "--out", str(out), "--classes", "first:3", "--split", "400/50/50"]
    assert data_prep_cli(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "images_per_class" not in err
    assert "split 400/50/50 needs 500 train images per class (400 + 50 + 50)" in err
    assert "hold only 400 each" in err and "e.g. 320/40/40" in err
    assert not out.exists()

    uneven = copy_real(real_root, tmp_path / "d", per_class=30)
    for f in tiny_imagenet.list_images(uneven / "train" / CLASSES[1] / "images")[:5]:
        f.unlink()
    with pytest.raises(ValueError, match=rf"hold 25 to 30 each \({CLASSES[1]} has 25\).*at most 25, e.g. 20/2/2"):
        make_subset(uneven, tmp_path / "x", classes="first:3", split="24/3/3")
    assert make_subset(uneven, tmp_path / "y", classes="first:3", split="20/2/3").is_dir()
