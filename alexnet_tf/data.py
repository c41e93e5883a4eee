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
    image_statistics,
    load_dataset,
    load_images,
    map_file_chunks,
    require_every_class,
    select_files,
)


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
    """What a run trains and validates on: uint8 images, int labels, the files they came from."""

    root: Path
    class_names: list
    train_files: list
    y_train: np.ndarray
    x_train: np.ndarray | None
    val_split: str
    val_files: list
    y_val: np.ndarray
    x_val: np.ndarray | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self):
        return [("train", self.train_files, self.y_train), (self.val_split, self.val_files, self.y_val)]


def data_work_dir(config) -> Path:
    """Where generated or extracted data goes: ``data/`` beside the runs folder."""
    return Path(config.runs_dir).resolve().parent / "data"


def load_data(config) -> Data:
    """The images ``config`` selects (``alexnet_tf.config.TrainConfig``), decoded through the cache."""
    data = select_data(config)
    data.x_train = load_images(data.train_files, config.image_size)
    data.x_val = load_images(data.val_files, config.image_size)
    return data


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
