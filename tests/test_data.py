import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tf.data import class_descriptions, decode_images, load_dataset, select_files
from alexnet_tf.feed import make_dataset
from data_prep import tiny_imagenet
from data_prep.tiny_imagenet import DataFormatError


def test_load_train_shapes_labels_and_order(synthetic_root):
    x, y, names = load_dataset(synthetic_root, "train", cache=False)
    assert x.shape == (600, 64, 64, 3) and x.dtype == np.uint8
    assert y.dtype == np.int32 and np.bincount(y).tolist() == [60] * 10
    assert names == sorted(tiny_imagenet.read_wnids(synthetic_root))
    files, _labels, _ = select_files(synthetic_root, "train")
    assert Path(files[0]).name == "synth0000_0.JPEG" and Path(files[10]).name == "synth0000_10.JPEG"
    assert np.array_equal(x[7], np.asarray(Image.open(files[7]).convert("RGB")))


def test_val_labels_follow_annotations(synthetic_root):
    x, _y, names = load_dataset(synthetic_root, "val", classes=3, cache=False)
    truth = {a.file: a.wnid for a in tiny_imagenet.read_val_annotations(synthetic_root)}
    files, labels, _ = select_files(synthetic_root, "val", classes=3)
    assert len(x) == 30 and [names[i] for i in labels] == [truth[Path(f).name] for f in files]


def test_grayscale_becomes_rgb(tmp_path):
    path = tmp_path / "g.JPEG"
    Image.fromarray(np.full((64, 64), 77, np.uint8), "L").save(path)
    rgb = decode_images([path])[0]
    assert rgb.shape == (64, 64, 3) and np.all(rgb[..., 0] == rgb[..., 2])


def test_images_per_class_and_classes_selection(synthetic_root):
    _x, y, names = load_dataset(
        synthetic_root, "train", classes=["synth0007", "synth0002"], images_per_class=5, cache=False
    )
    assert names == ["synth0002", "synth0007"] and y.tolist() == [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match=r"images_per_class=61 but class 'synth0000' has only 60"):
        load_dataset(synthetic_root, "train", images_per_class=61)
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['goldfish'\]"):
        load_dataset(synthetic_root, "train", classes=["goldfish"])
    with pytest.raises(ValueError, match="classes=11"):
        load_dataset(synthetic_root, "train", classes=11)


def test_resized_load(synthetic_root):
    x, _, _ = load_dataset(synthetic_root, "val", classes=1, image_size=32, cache=False)
    assert x.shape == (10, 32, 32, 3)


def test_junk_files_are_ignored(synthetic_root, tmp_path):
    root = Path(shutil.copytree(synthetic_root, tmp_path / "d"))
    for junk in (".DS_Store", "Thumbs.db", "notes.txt"):
        (root / "train" / "synth0000" / "images" / junk).write_bytes(b"junk")
    x, _y, _ = load_dataset(root, "train", classes=1, cache=False)
    assert len(x) == 60


def test_corrupt_jpeg_names_the_file(synthetic_root, tmp_path):
    root = Path(shutil.copytree(synthetic_root, tmp_path / "d"))
    bad = root / "train" / "synth0001" / "images" / "synth0001_4.JPEG"
    original = bad.read_bytes()
    bad.write_bytes(original[:200])
    with pytest.raises(DataFormatError, match="cannot decode image .*synth0001_4.JPEG"):
        load_dataset(root, "train", classes=2, cache=False)
    assert bad.read_bytes() == original[:200]  # the loader never touches the data


def test_cache_round_trip_and_invalidation(synthetic_root, tmp_path):
    root = Path(shutil.copytree(synthetic_root, tmp_path / "d"))
    cache = tmp_path / "cache"
    first = load_dataset(root, "train", classes=2, cache_dir=cache)
    entries = [e for e in cache.iterdir() if e.name != "hashes"]  # the hash memo's folder beside the entries
    assert len(entries) == 1 and (entries[0] / "images.npy").is_file()
    second = load_dataset(root, "train", classes=2, cache_dir=cache)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    # a changed file is a new selection: the stale arrays are not reused
    img = root / "train" / "synth0000" / "images" / "synth0000_0.JPEG"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)
    third = load_dataset(root, "train", classes=2, cache_dir=cache)
    assert len(list(cache.iterdir())) == 3 and third[0][0].max() == 0


def test_class_folder_dataset(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    x, y, names = load_dataset(tmp_path, "val", image_size=64, cache=False)
    assert names == ["cat", "dog"] and x.shape == (6, 64, 64, 3) and y.tolist() == [0, 0, 0, 1, 1, 1]


def test_empty_selection_names_the_folder(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "train" / "cat" / "0.jpg")
    assert len(select_files(tmp_path, "train")[0]) == 1
    with pytest.raises(DataFormatError, match=r"val has no images for classes \['cat'\]"):
        select_files(tmp_path, "val")


def test_class_descriptions(synthetic_root):
    assert class_descriptions(synthetic_root, ["synth0000", "unknown"]) == ["synthetic circle", "unknown"]


def test_make_dataset_batches_and_shuffles(synthetic_root):
    x, y, _ = load_dataset(synthetic_root, "val", cache=False)
    batches = list(make_dataset(x, y, batch_size=32, shuffle=True, seed=1))
    assert [len(b[0]) for b in batches] == [32, 32, 32, 4]
    xs = np.concatenate([b[0].numpy() for b in batches])
    ys = np.concatenate([b[1].numpy() for b in batches])
    assert xs.dtype == np.uint8 and sorted(ys.tolist()) == sorted(y.tolist())
    assert not np.array_equal(ys, y)
    # pairing survives the shuffle: every image sits beside its own label
    lookup = {x[i].tobytes(): y[i] for i in range(len(x))}
    assert all(lookup[img.tobytes()] == label for img, label in zip(xs, ys))


def test_directory_dataset_on_reorganised_val(synthetic_root, tmp_path):
    from alexnet_tf.data import directory_dataset
    from data_prep import reorganise_val

    root = Path(shutil.copytree(synthetic_root, tmp_path / "d"))
    reorganise_val(root)
    names = sorted(tiny_imagenet.read_wnids(root))
    ds = directory_dataset(root / "val", names, batch_size=50)
    labels = np.concatenate([b[1].numpy() for b in ds])
    assert len(labels) == 100 and np.bincount(labels).tolist() == [10] * 10


def test_real_load(real_root):
    x, y, names = load_dataset(real_root, "val", classes=10)
    assert x.shape == (500, 64, 64, 3) and x.dtype == np.uint8 and np.bincount(y).tolist() == [50] * 10
    assert names[0] == "n01443537"
    x2, y2, _ = load_dataset(real_root, "train", classes=10, images_per_class=100)
    assert x2.shape == (1000, 64, 64, 3) and np.bincount(y2).tolist() == [100] * 10
    files, _, _ = select_files(real_root, "train", classes=10, images_per_class=100)
    grey = [i for i, f in enumerate(files) if Image.open(f).mode == "L"]
    assert grey, "Tiny-10 train has grayscale images; they must load as RGB"
    assert np.array_equal(x2[grey[0], ..., 0], x2[grey[0], ..., 1])


def test_image_statistics():
    from alexnet_tf.data import image_statistics

    x = np.zeros((4, 2, 2, 3), np.uint8)
    x[0] = 90  # grayscale (R == G == B)
    x[1, ..., 0] = 200  # colour
    x[2] = 30
    x[3, ..., 2] = 7
    stats = image_statistics(x, chunk=3)
    assert stats["grayscale_share"] == 0.5 and stats["images"] == 4
    assert stats["mean"] == [80.0, 30.0, 31.75]
    assert stats["std"][1] == pytest.approx(np.std(x[..., 1]), abs=0.01)
