"""Training: data -> model -> fit -> evaluate -> figures, all into one run folder.

``train`` is the whole story; ``alexnet_tf.run_folder`` owns the folder (its layout, its lock,
its backup, and what may be written there), ``alexnet_tf.data`` the images.

Under ``distribute='data-parallel'`` every process runs this same code; process 0 alone writes the
run folder, and every process restores from its backup on resume (``alexnet_tf.distribute``).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from . import distribute
from .augment import AUGMENTATIONS, augmentation_feed, batch_mixing, pixel_pca
from .config import TrainConfig
from .data import load_data
from .feed import epoch_callbacks, steps_per_epoch, training_batches, validation_arguments, validation_batch_size
from .hardware import choose_jit_compile, choose_precision, describe_device, gpu_compute_capability
from .keras_internals import random_stream_variables
from .model import MODELS, channel_stats
from .run_folder import RunFolder, read_history, shown
from .saved_run import RunResult, evaluate_run, load_run
from .schedules import learning_rate, plateau_callback


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    rate = learning_rate(config, steps_per_epoch)
    # Keras keeps the average beside the weights and writes it into them when fit ends.
    ema = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate, **ema)
    return keras.optimizers.SGD(rate, momentum=config.momentum, **ema)


def load_matching_weights(model, path) -> int:
    """Copy weights from a ``.keras`` model or a ``.weights.h5`` file into ``model`` wherever a layer
    of the same name has weights of the same shapes (e.g. all but the classifier of a network
    trained on other classes). Returns how many layers were copied."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a .keras model or a .weights.h5 file")
    if path.name.endswith(".weights.h5"):
        before = [np.copy(w) for w in model.get_weights()]
        model.load_weights(path, skip_mismatch=True)
        return sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    source = {layer.name: layer for layer in keras.models.load_model(path).layers}
    copied = 0
    for layer in model.layers:
        other = source.get(layer.name)
        if other is None or not layer.weights:
            continue
        weights = other.get_weights()
        if [w.shape for w in weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(weights)
            copied += 1
    return copied


class _EpochSeeds(keras.callbacks.Callback):
    """Start every random stream inside the model (dropout, augmentation on JAX and PyTorch) at a
    point set by the epoch. Keras does not save these streams with the weights, so without this a
    resumed run would draw its first epoch's numbers again instead of those an uninterrupted run
    draws. A stream is (seed, counter) and each draw adds 1 to the counter: epoch e starts at e * 2**20."""

    def on_train_begin(self, logs=None):
        self.streams = [(v, keras.ops.convert_to_numpy(v.value)) for v in random_stream_variables(self.model)]

    def on_epoch_begin(self, epoch, logs=None):
        for variable, initial in self.streams:
            variable.assign(initial + np.array([0, epoch * 2**20], dtype=initial.dtype))


class FitRecord(keras.callbacks.TerminateOnNaN):
    """Stops on a NaN or infinite loss (TerminateOnNaN) and records what ``finish`` reports: the
    epoch where the loss diverged, the epochs this session trained, and the fit's seconds."""

    diverged_epoch = None

    def on_train_begin(self, logs=None):
        self.started, self.epochs, self.seconds = time.perf_counter(), 0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.diverged_epoch = self.epoch
        super().on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.started

    def raise_if_diverged(self, run, config) -> None:
        if self.diverged_epoch is None:
            return
        run.drop_backup()  # its weights are not finite: resuming could only diverge again
        raise FloatingPointError(
            f"training diverged: the loss became NaN or infinite in epoch {self.diverged_epoch + 1}, so no model of "
            f"that epoch was kept. Run again with a lower --learning-rate (now {config.learning_rate}) or --schedule "
            f"cosine with warm-up; that is a new run folder. This one: {run.path}"
        )


class EpochLine(keras.callbacks.Callback):
    """One short line an epoch (``train(..., verbose="line")``): what a notebook should keep of a
    fit, where Keras' own ``verbose=2`` prints two long lines and ``verbose=1`` a progress bar."""

    def on_train_begin(self, logs=None):
        self.epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [
            f"epoch {epoch + 1:>{len(str(self.epochs))}}/{self.epochs}",
            f"loss {logs.get('loss', float('nan')):.3f}",
        ]
        for key, label in (("accuracy", "top-1"), ("val_accuracy", "val top-1"), ("val_top5_accuracy", "val top-5")):
            if key in logs:
                parts.append(f"{label} {logs[key]:.3f}")
        parts.append(f"{time.perf_counter() - self.started:.0f} s")
        print("  ".join(parts))


def make_augmenter(config: TrainConfig, x_train=None):
    """The augmentation layer ``config.augmentation`` names in the registry (None for none, and for
    an augmentation that feeds training as a generator instead, such as classic). PCA lighting
    takes its principal components from ``x_train``, the training images."""
    if augmentation_feed(config.augmentation) != "layer":
        return None
    factory = AUGMENTATIONS.lookup(config.augmentation)
    if config.augment.pca_lighting:
        return factory(config.augment, config.seed, pca=pixel_pca(x_train))
    return factory(config.augment, config.seed)


def training_data(config: TrainConfig, data, augment=None, shard=None):
    """Batches of (uint8 or float images, one-hot labels): ``augment`` mapped over them (where the
    model does not carry it), MixUp or CutMix, or the generator (ImageDataGenerator) the
    augmentation's registry entry makes."""
    one_hot = np.eye(data.num_classes, dtype="float32")[data.y_train]
    if augmentation_feed(config.augmentation) == "generator":
        return _generator_batches(config, data, one_hot)
    mix = batch_mixing(config.mixing, data.num_classes, config.seed) if config.mixing else None
    return training_batches(data.x_train, one_hot, config.batch_size, config.seed, augment, mix, shard)


def _generator_batches(config: TrainConfig, data, one_hot):
    if config.mixing:
        raise ValueError("mixing (MixUp/CutMix) works with augmentation='fast' or 'none'")
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"augmentation={config.augmentation!r} is ImageDataGenerator, which needs TensorFlow; on the "
            f"{keras.backend.backend()} backend use augmentation='fast' (the same transforms)"
        )
    pca = pixel_pca(data.x_train) if config.augment.pca_lighting else None
    generator = AUGMENTATIONS.lookup(config.augmentation)(config.augment, config.seed, pca)
    return generator.flow(data.x_train, one_hot, batch_size=config.batch_size, shuffle=True, seed=config.seed)


def train(config: TrainConfig, callbacks=(), verbose=1) -> RunResult:
    """Run ``config`` end to end into its run folder: data -> model -> fit -> evaluation.
    ``verbose`` is Keras' (0, 1 a progress bar, 2 a line an epoch) or "line": one short line an epoch."""
    if verbose == "line":
        callbacks, verbose = [*callbacks, EpochLine()], 0
    run = RunFolder(config, writer=distribute.is_writer())
    with run.lock():
        recorded, device = run_settings(config, run)
        run.check_config(recorded)
        if run.finished:
            print(run.finished_line())
            return load_run(run.path)
        run.say_backend_change()
        run.say(f"Training on {device}; precision {recorded.precision}, XLA {'on' if recorded.jit_compile else 'off'}")
        distribute.check(config.distribute, config.batch_size)
        with precision_policy(recorded.precision):
            seed_everything(config)
            data = load_data(config)
            run.start(recorded, data)  # the config and the manifest; a resume checks the data is the same
            shard = distribute.feed_shard(config.distribute)  # this process's share of each global batch
            steps = steps_per_epoch(len(data.x_train), config.batch_size, sharded=shard is not None)
            record = FitRecord()
            scope, strategy = distribute.scope(config.distribute)
            with scope:  # every variable, the augmentation's random stream too, under the distribution
                augment = make_augmenter(config, data.x_train)
                # On a TensorFlow CPU tf.data augments beside the step; elsewhere the model carries it.
                in_model = augment is not None and (describe_device()[1] or keras.backend.backend() != "tensorflow")
                model = build_model(config, data, augment if in_model else None)
                compile_model(model, config, steps, data.num_classes, recorded.jit_compile)
                initial_epoch = run.restore(model)
                batches = training_data(config, data, None if in_model else augment, shard)
                model.fit(
                    batches,
                    epochs=config.epochs,
                    initial_epoch=initial_epoch,
                    steps_per_epoch=steps,
                    **validation_data(config, data, sharded=shard is not None),
                    callbacks=[
                        *epoch_callbacks(batches),
                        _EpochSeeds(),
                        record,
                        *run.callbacks(initial_epoch > 0),
                        *schedule_callbacks(config),
                        *callbacks,
                    ],
                    verbose=verbose if run.writer else 0,
                    shuffle=False,  # the data shuffles itself
                )
            record.raise_if_diverged(run, config)
            images = steps * config.batch_size if shard is not None else len(data.x_train)
            facts = fit_facts(config, run, record, strategy, images, resumed=initial_epoch > 0)
            return finish(run, model, data, recorded, device, facts)


def fit_facts(config: TrainConfig, run: RunFolder, record: FitRecord, strategy, images: int, resumed: bool) -> dict:
    """What the metrics record of this session's fit beside the scores: ``images`` is one epoch's
    training images (of every process)."""
    return {
        "resumed": resumed,
        "distribute": config.distribute,
        "processes": distribute.process_count(),
        "replicas": distribute.replica_count(config.distribute, strategy),
        "fit_seconds": record.seconds,
        "wall_seconds": time.perf_counter() - run.opened,
        # training and validation passes of this session's epochs, per training image
        "images_per_second": images * record.epochs / record.seconds if record.epochs else 0.0,
    }


def validation_data(config: TrainConfig, data, sharded=False) -> dict:
    """``fit``'s validation arguments for ``data`` (``feed.validation_arguments``)."""
    one_hot = np.eye(data.num_classes, dtype="float32")[data.y_val]
    batch = validation_batch_size(len(data.x_val), distribute.local_device_count(config.distribute))
    return validation_arguments(data.x_val, one_hot, batch, sharded=sharded)


def run_settings(config: TrainConfig, run: RunFolder) -> tuple[TrainConfig, str]:
    """The config as its run folder records it (absolute paths, the precision and XLA chosen),
    and the device. A run keeps the precision and XLA setting it started with, so that "auto"
    resumes or reloads it on other hardware (a Colab T4 today, an A100 tomorrow)."""
    device, on_gpu = describe_device()
    precision = choose_precision(config.precision, gpu_compute_capability() if on_gpu else None)
    jit_compile = choose_jit_compile(config.jit_compile, on_gpu, keras.backend.backend())
    started_with = run.config()
    if started_with is not None and config.precision == "auto":
        precision = started_with.precision
    if started_with is not None and config.jit_compile is None:
        jit_compile = started_with.jit_compile
    return config.resolved().replace(precision=precision, jit_compile=jit_compile), device


@contextlib.contextmanager
def precision_policy(precision: str):
    """The global mixed-precision policy for the run, then the caller's again."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def seed_everything(config: TrainConfig) -> None:
    keras.utils.set_random_seed(config.seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":  # JAX on a CPU is deterministic
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build_model(config: TrainConfig, data, augmentation=None) -> keras.Model:
    """The network ``config.variant`` names in the registry, normalised with the training images'
    statistics, with ``augmentation`` (a layer) first when the model carries it."""
    mean, variance = channel_stats(data.x_train)
    model = MODELS.lookup(config.variant)(config, data.num_classes, mean, variance, augmentation)
    if config.init_weights:
        copied = load_matching_weights(model, config.init_weights)
        print(f"Started from {config.init_weights}: weights of {copied} layers")
    if config.freeze_features:
        for layer in model.layers:
            if layer.name.startswith(("conv", "bn")):
                layer.trainable = False
    return model


def compile_model(model, config: TrainConfig, steps: int, num_classes: int, jit_compile: bool) -> None:
    model.compile(
        optimizer=_optimizer(config, steps),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5_accuracy"),
        ],
        jit_compile=jit_compile,
    )


def schedule_callbacks(config: TrainConfig) -> list:
    """The plateau rule's callback (the other schedules are the optimizer's own), and early stopping."""
    out = []
    if config.schedule == "plateau":
        out.append(plateau_callback())
    if config.early_stopping_patience:
        out.append(
            keras.callbacks.EarlyStopping(
                "val_loss", patience=config.early_stopping_patience, restore_best_weights=False
            )
        )
    return out


def finish(run: RunFolder, model, data, recorded: TrainConfig, device: str, facts: dict) -> RunResult:
    """Save the final model, evaluate it into the run folder, and end the run (its backup goes last)."""
    if not run.writer:
        print(
            f"process {distribute.process_index()} of {distribute.process_count()}: trained; process 0 writes "
            f"{run.path}"
        )
        return RunResult(run.path, model, pd.DataFrame(), {}, None)
    history = read_history(run.history_file)
    run.save_model(model)
    if recorded.distribute == "data-parallel":
        # Its weights live on every device of every process; process 0 evaluates a local copy alone.
        model = run.model()
    metrics, report = evaluate_run(
        model, run.path, data.root, data.class_names, data.x_val, data.y_val, recorded.tta, history, data.val_split
    )
    metrics.update(
        device=device,
        precision=recorded.precision,
        jit_compile=recorded.jit_compile,
        epochs=len(history),
        train_images=len(data.x_train),
        **facts,
    )
    run.write_metrics(metrics)
    run.drop_backup()  # last: a kill before this point resumes into the evaluation again
    print(
        f"top-1 accuracy {metrics['top1_accuracy']:.3f}, top-5 accuracy {metrics['top5_accuracy']:.3f} "
        f"on {len(data.y_val)} {data.val_split} images. Run folder: {shown(run.path)}"
    )
    return RunResult(run.path, model, history, metrics, report)
