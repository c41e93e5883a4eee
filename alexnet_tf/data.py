"""Feeding images to Keras: the run's data (``load_data``) and ``tf.data`` pipelines.

Reading the dataset (its layout, the selection of files, decoding and the cache) is
``data_prep``'s; this module builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep import prepare_dataset, tiny_imagenet
from data_prep.images import (  # noqa: F401 (the loaders, also reachable as alexnet_tf.data.*)
    class_descriptions,
    decode_image,
    decode_images,
    default_cache_dir,
    file_hashes,
    image_statistics,
    load_dataset,
    load_images,
    map_file_chunks,
    require_every_class,
    select_files,
    shared_images,
)

SHOWN_SHARED = 3  # shared images named in train's refusal; the rest are counted


def make_dataset(images, labels=None, batch_size=128, shuffle=False, seed=None, augment=None, drop_remainder=False):
    """A ``tf.data`` pipeline over uint8 arrays: shuffle, batch, augment per batch, prefetch.

    The pipeline shuffles and batches indices and gathers each batch from the arrays, so the
    images live in memory once: ``from_tensor_slices`` on the arrays would copy them into a
    tensor, and a shuffle buffer the size of the set would hold a second copy of every image.

    ``augment``: a callable on uint8 or float batches (e.g. ``alexnet_tf.augment.fast_augmenter``),
    applied after batching because the Keras preprocessing layers are fastest on whole batches.
    """
    import tensorflow as tf

    arrays = [np.asarray(images)] + ([np.asarray(labels)] if labels is not None else [])
    dtypes = [tf.as_dtype(a.dtype) for a in arrays]

    def gather(rows):
        rows = np.sort(rows)  # the same images, read in memory order
        return tuple(a[rows] for a in arrays)

    def batch_of(rows):
        out = tf.numpy_function(gather, [rows], dtypes, stateful=False)
        for tensor, array in zip(out, arrays):
            tensor.set_shape((None, *array.shape[1:]))
        if augment is not None:
            out = [augment(out[0]), *out[1:]]
        return tuple(out) if labels is not None else out[0]

    ds = tf.data.Dataset.range(len(arrays[0]))
    if shuffle:
        ds = ds.shuffle(len(arrays[0]), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    # One thread, no autotuning: on a 2-core CPU, autotuned threads run beside the training step
    # and slow it by about 8% (benchmarks/bench_step.py), while one thread gathers and augments
    # some 90,000 images/s, far more than any step consumes.
    ds = ds.map(batch_of, num_parallel_calls=1, deterministic=True).prefetch(2)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.autotune.enabled = False
    return ds.with_options(options)


def directory_dataset(split_dir, class_names, image_size=64, batch_size=128, shuffle=False, seed=None):
    """A ``tf.data`` pipeline straight from class folders (``<split_dir>/<class>/*.jpg``).

    ``class_names`` is passed explicitly so that reorganised ``val/`` (which keeps the original
    ``val/images`` folder beside the class folders) gives exactly the classes asked for.
    """
    import keras

    return keras.utils.image_dataset_from_directory(
        split_dir,
        labels="inferred",
        label_mode="int",
        class_names=list(class_names),
        color_mode="rgb",
        image_size=(image_size, image_size),
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
    )


@dataclass
class Data:
    """What a run trains and validates on: uint8 images, int labels, the files they came from and,
    once ``load_data`` has hashed them, their ``(size, sha256)`` (the cache key and the manifest's
    columns, computed once for both)."""

    root: Path
    class_names: list
    train_files: list
    y_train: np.ndarray
    x_train: np.ndarray | None
    val_split: str
    val_files: list
    y_val: np.ndarray
    x_val: np.ndarray | None
    train_hashes: list | None = None
    val_hashes: list | None = None
    shared_images: int = 0  # val images that are also train images, accepted by allow_shared_images

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self):
        return [("train", self.train_files, self.y_train), (self.val_split, self.val_files, self.y_val)]

    def split_hashes(self) -> list[list]:
        """``file_hashes`` of each of ``splits()``'s file lists, hashed here where not yet."""
        if self.train_hashes is None:
            self.train_hashes = file_hashes(self.train_files)
        if self.val_hashes is None:
            self.val_hashes = file_hashes(self.val_files)
        return [self.train_hashes, self.val_hashes]


def data_work_dir(config) -> Path:
    """Where generated or extracted data goes: ``data/`` beside the runs folder."""
    return Path(config.runs_dir).resolve().parent / "data"


def load_data(config) -> Data:
    """The images ``config`` selects (``alexnet_tf.config.TrainConfig``), decoded through the cache.

    Every file is hashed once (the cache's key and, later, the run's manifest); val images that
    are also train images, by content, are refused before anything is decoded, unless
    ``config.allow_shared_images`` accepts them (``data.shared_images`` then counts them)."""
    data = select_data(config)
    train_hashes, val_hashes = data.split_hashes()
    data.shared_images = require_unshared(data, config.allow_shared_images)
    data.x_train = load_images(data.train_files, config.image_size, hashes=train_hashes)
    data.x_val = load_images(data.val_files, config.image_size, hashes=val_hashes)
    return data


def require_unshared(data: Data, allow: bool) -> int:
    """The number of ``data``'s val images whose content is also a train image's: an error naming
    the count and the first of them unless ``allow``, when a line says it and the count is returned
    (a run validated on images it trains on would report scores that mean nothing)."""
    train_hashes, val_hashes = data.split_hashes()
    pairs = shared_images((data.train_files, train_hashes), (data.val_files, val_hashes))
    if not pairs:
        return 0
    split = data.val_split
    named = "; ".join(f"{_relative(a, data.root)} is {_relative(b, data.root)}" for a, b in pairs[:SHOWN_SHARED])
    more = f" and {len(pairs) - SHOWN_SHARED} more" if len(pairs) > SHOWN_SHARED else ""
    what = f"{len(pairs)} of the {len(data.val_files)} {split} images are also train images (the same bytes)"
    if not allow:
        raise tiny_imagenet.DataFormatError(
            f"{what}: {named}{more}. A run scored on images it trained on reports scores that mean nothing: "
            f"remove the copies from {data.root}, or pass --allow-shared-images to train on this data all the "
            f"same (the run records the count in its config.json)"
        )
    print(f"{what}, accepted by --allow-shared-images: {named}{more}")
    return len(pairs)


def _relative(path, root) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def select_data(config) -> Data:
    """Which files ``config`` trains and validates on, without decoding them (``x_train`` and
    ``x_val`` stay None): what ``load_data`` decodes, and what a schedule's plot needs to know."""
    root = prepare_dataset(config.data, data_work_dir(config))
    if config.classes is None:
        class_names = tiny_imagenet.dataset_classes(root)
    else:
        from data_prep.subset import choose_classes

        class_names = choose_classes(root, config.classes, config.seed)
    if len(class_names) < 2:
        raise ValueError(
            f"classes={config.classes!r} selects {len(class_names)} class; a classifier needs at least "
            f"2 (e.g. --classes first:2, or two names separated by a comma)"
        )
    train_files, y_train, class_names = select_files(root, "train", class_names, config.images_per_class, config.seed)
    val_files, y_val, _ = select_files(root, config.val_split, class_names)
    if np.any(y_val < 0):
        raise tiny_imagenet.DataFormatError(
            f"{root / config.val_split} has no labels (as Tiny ImageNet's test images), so it cannot validate a "
            f"run: use val_split='val' (--val-split val) or a split with labels"
        )
    return Data(root, class_names, train_files, y_train, None, config.val_split, val_files, y_val, None)
