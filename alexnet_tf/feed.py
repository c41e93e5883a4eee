"""Feeding training batches to Keras, whatever the backend.

TensorFlow gets a ``tf.data`` pipeline (``make_dataset``): shuffle, batch, the
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

from dataclasses import dataclass

import keras
import numpy as np


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
        return {"validation_data": make_dataset(images, one_hot_labels, batch_size)}
    return {"validation_data": (images, one_hot_labels), "validation_batch_size": batch_size}


@dataclass
class Feed:
    """What ``fit`` trains and validates on (``fit_feed``)."""

    batches: object  # the training batches
    steps: int  # training steps an epoch
    validation: dict  # fit's validation arguments
    callbacks: list  # what keeps the batches in step with fit's epoch (``epoch_callbacks``)
    images: int  # training images an epoch, of every process


def fit_feed(data, batch_size, seed, augmentation, distribution) -> Feed:
    """The training batches of ``data`` (``alexnet_tf.data.Data``) with their one-hot labels, and its
    validation arguments, under ``distribution`` (``alexnet_tf.distribute.Distribution``).
    ``augmentation`` (``alexnet_tf.augment.TrainingAugmentation``) maps its layer over the batches
    where the model does not carry it, mixes them, or makes them with its generator."""
    one_hot = np.eye(data.num_classes, dtype="float32")
    sharded = distribution.shard is not None
    if augmentation.generator is not None:
        batches = augmentation.generator.flow(
            data.x_train, one_hot[data.y_train], batch_size=batch_size, shuffle=True, seed=seed
        )
    else:
        layer = None if augmentation.in_model else augmentation.layer
        batches = training_batches(
            data.x_train, one_hot[data.y_train], batch_size, seed, layer, augmentation.mix, distribution.shard
        )
    steps = steps_per_epoch(len(data.x_train), batch_size, sharded)
    validation_batch = validation_batch_size(len(data.x_val), distribution.local_devices)
    validation = validation_arguments(data.x_val, one_hot[data.y_val], validation_batch, sharded)
    images = steps * batch_size if sharded else len(data.x_train)
    return Feed(batches, steps, validation, epoch_callbacks(batches), images)
