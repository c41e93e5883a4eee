"""Feeding training batches to Keras, whatever the backend.

TensorFlow gets a ``tf.data`` pipeline (``alexnet_tf.data.make_dataset``): shuffle, batch, the
fast augmentation mapped over batches, prefetch. JAX and PyTorch get ``ArrayBatches``, a
``keras.utils.PyDataset`` over the same uint8 arrays, and augment inside the model (the
``RandomAffine`` layer is written in ``keras.ops``), so they need no TensorFlow at all.

Under ``data-parallel`` (``alexnet_tf.distribute``) each of several processes reads only its own
share of every global batch: all of them draw the same seeded order, and process ``i`` of ``n``
takes the ``i``-th slice of each batch, which Keras joins into one global batch across processes.
An epoch is then the whole batches only, so that every process feeds the same number of equal
shares. Validation is not split: every process feeds the whole validation set, so the metrics
Keras averages over the copies are exactly those of the set (see ``validation_batch_size``).
"""

from __future__ import annotations

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled batches of (uint8 images, labels) from in-memory arrays, reshuffled every epoch
    with a seed derived from ``seed`` and the epoch. ``transform`` (e.g. MixUp) maps each batch.

    ``shard=(i, n)``: this is process ``i`` of ``n``; each item is its slice of the global batch
    of ``batch_size`` images, and the last, partial batch is left out."""

    def __init__(self, images, labels, batch_size, seed=0, transform=None, shard=None, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.transform = batch_size, seed, transform
        self.shard = shard
        if shard is not None:
            index, count = shard
            if batch_size % count or not 0 <= index < count:
                raise ValueError(
                    f"a global batch of {batch_size} cannot give process {index} an equal share of "
                    f"{count}: use a multiple of {count}"
                )
            if len(images) < batch_size:
                raise ValueError(f"{len(images)} training images do not fill one global batch of {batch_size}")
        self.epoch = 0
        self._order = self._permutation()

    def _permutation(self):
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def set_epoch(self, epoch):
        """Draw epoch ``epoch``'s order (a resumed run goes on with the order it would have had)."""
        self.epoch = epoch
        self._order = self._permutation()

    def __len__(self):
        return steps_per_epoch(len(self.images), self.batch_size, sharded=self.shard is not None)

    def __getitem__(self, index):
        # Sorted within the batch: the same images, read in memory order. Sorted before it is split,
        # so the global batch is arranged alike whatever the number of processes.
        rows = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        if self.shard is not None:
            share = self.batch_size // self.shard[1]
            rows = rows[self.shard[0] * share : (self.shard[0] + 1) * share]
        images, labels = self.images[rows], self.labels[rows]
        if self.transform is not None:
            images, labels = (keras.ops.convert_to_numpy(t) for t in self.transform(images, labels))
        return images, labels

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)


def epoch_callbacks(batches):
    """Callbacks that keep ``batches`` in step with ``fit``'s epoch number, which starts past 0 when
    a run resumes: the resumed epochs see the orders an uninterrupted run would have seen."""
    if not isinstance(batches, ArrayBatches):
        return []
    return [keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: batches.set_epoch(epoch))]


def training_batches(images, one_hot_labels, batch_size, seed=0, augment=None, mix=None, shard=None):
    """Batches for ``model.fit`` on the current backend. ``augment`` (a batch layer) is only
    applied here on TensorFlow; on other backends the model carries it. ``mix``:
    ``(images, int labels) -> (images, soft labels)``, e.g. ``augment.batch_mixing``.
    ``shard=(process index, process count)`` under data-parallel (JAX): this process's shares."""
    if keras.backend.backend() != "tensorflow" or shard is not None:
        transform = None
        if mix is not None:

            def transform(x, y):
                return mix(x, np.argmax(y, -1))

        return ArrayBatches(images, one_hot_labels, batch_size, seed, transform, shard)
    import tensorflow as tf

    from .data import make_dataset

    ds = make_dataset(images, one_hot_labels, batch_size, shuffle=True, seed=seed, augment=augment)
    if mix is not None:
        ds = ds.map(lambda x, y: mix(x, tf.argmax(y, -1)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds


def steps_per_epoch(num_images, batch_size, sharded=False) -> int:
    """Training steps in an epoch: whole global batches only when the batches are sharded."""
    return num_images // batch_size if sharded else int(np.ceil(num_images / batch_size))


def validation_batch_size(num_images, local_devices=1, preferred=256) -> int:
    """Validation batch for one process. Each batch must split evenly over the process's devices,
    the last one included, so the set's size must too."""
    if num_images % local_devices:
        raise ValueError(
            f"{num_images} validation images do not split evenly over this process's {local_devices} "
            f"devices; run one process per device (--num-processes), or choose classes so that "
            f"the validation images are a multiple of {local_devices}"
        )
    return max(local_devices, preferred - preferred % local_devices)


def validation_arguments(images, one_hot_labels, batch_size, sharded=False) -> dict:
    """``fit``'s validation arguments: on TensorFlow a ``tf.data`` pipeline that gathers each batch
    from the arrays (Keras' adapter for arrays would copy them into a tensor first); elsewhere, or
    under data-parallel, the arrays and the batch size. Every image once, in order."""
    if keras.backend.backend() == "tensorflow" and not sharded:
        from .data import make_dataset

        return {"validation_data": make_dataset(images, one_hot_labels, batch_size)}
    return {"validation_data": (images, one_hot_labels), "validation_batch_size": batch_size}
