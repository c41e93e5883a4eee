"""The run's data (``load_data``: selected, hashed, checked and decoded) and a ``tf.data`` pipeline
straight from class folders; the batches that feed training are ``alexnet_tf.feed``'s.

Reading the dataset (its layout, the selection of files, decoding and the cache) is
``data_prep``'s; this module builds on it.
"""

from __future__ import annotations

import os
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
from data_prep.subset import choose_classes

SHOWN_SHARED = 3  # shared images named in train's refusal; the rest are counted


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


def data_work_dir(config) -> Path:
    """Where generated or extracted data goes: ``data/`` beside the runs folder."""
    return Path(config.runs_dir).resolve().parent / "data"


def load_data(config) -> Data:
    """The images ``config`` selects (``alexnet_tf.config.TrainConfig``), decoded through the cache.

    Every file is hashed once (the cache's key and, later, the run's manifest); val images that
    are also train images, by content, are refused before anything is decoded (a run scored on
    images it trained on reports scores that mean nothing), unless ``config.allow_shared_images``
    accepts them: ``data.shared_images`` then counts them."""
    data = select_data(config)
    data.train_hashes, data.val_hashes = file_hashes(data.train_files), file_hashes(data.val_files)
    pairs = shared_images((data.train_files, data.train_hashes), (data.val_files, data.val_hashes))
    if pairs:
        named = "; ".join(
            f"{os.path.relpath(a, data.root)} is {os.path.relpath(b, data.root)}" for a, b in pairs[:SHOWN_SHARED]
        )
        more = f" and {len(pairs) - SHOWN_SHARED} more" if len(pairs) > SHOWN_SHARED else ""
        what = (
            f"{len(pairs)} of the {len(data.val_files)} {data.val_split} images are also train images (the same bytes)"
        )
        if not config.allow_shared_images:
            raise tiny_imagenet.DataFormatError(
                f"{what}: {named}{more}. A run scored on images it trained on reports scores that mean nothing: "
                f"remove the copies from {data.root}, or pass --allow-shared-images to train on this data all the "
                f"same (the run records the count in its config.json)"
            )
        print(f"{what}, accepted by --allow-shared-images: {named}{more}")
        data.shared_images = len(pairs)
    data.x_train = load_images(data.train_files, config.image_size, hashes=data.train_hashes)
    data.x_val = load_images(data.val_files, config.image_size, hashes=data.val_hashes)
    return data


def select_data(config) -> Data:
    """Which files ``config`` trains and validates on, without decoding them (``x_train`` and
    ``x_val`` stay None): what ``load_data`` decodes, and what a schedule's plot needs to know."""
    work_dir = data_work_dir(config)
    root = prepare_dataset(config.data, work_dir)
    class_names = choose_classes(root, config.classes, config.seed)  # None: every class
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
