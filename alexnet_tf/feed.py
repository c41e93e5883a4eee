"""Feeding training batches to Keras, whatever the backend.

TensorFlow gets a ``tf.data`` pipeline (``alexnet_tf.data.make_dataset``): shuffle, batch, the
fast augmentation mapped over batches, prefetch. JAX and PyTorch get ``ArrayBatches``, a
``keras.utils.PyDataset`` over the same uint8 arrays, and augment inside the model (the
``RandomAffine`` layer is written in ``keras.ops``), so they need no TensorFlow at all.
"""

from __future__ import annotations

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled batches of (uint8 images, labels) from in-memory arrays, reshuffled every epoch
    with a seed derived from ``seed`` and the epoch. ``transform`` (e.g. MixUp) maps each batch."""

    def __init__(self, images, labels, batch_size, seed=0, transform=None, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.transform = batch_size, seed, transform
        self.epoch = 0
        self._order = self._permutation()

    def _permutation(self):
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def __len__(self):
        return int(np.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, index):
        # Sorted within the batch: the same images, read in memory order.
        rows = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        images, labels = self.images[rows], self.labels[rows]
        if self.transform is not None:
            images, labels = (keras.ops.convert_to_numpy(t) for t in self.transform(images, labels))
        return images, labels

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._permutation()


def training_batches(images, one_hot_labels, batch_size, seed=0, augment=None, mix=None):
    """Batches for ``model.fit`` on the current backend. ``augment`` (a batch layer) is only
    applied here on TensorFlow; on other backends the model carries it. ``mix``:
    ``(images, int labels) -> (images, soft labels)``, e.g. ``augment.batch_mixing``."""
    if keras.backend.backend() != "tensorflow":
        transform = None
        if mix is not None:
            def transform(x, y):
                return mix(x, np.argmax(y, -1))
        return ArrayBatches(images, one_hot_labels, batch_size, seed, transform)
    import tensorflow as tf

    from .data import make_dataset

    ds = make_dataset(images, one_hot_labels, batch_size, shuffle=True, seed=seed, augment=augment)
    if mix is not None:
        ds = ds.map(lambda x, y: mix(x, tf.argmax(y, -1)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds
