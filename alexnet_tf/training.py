"""Training: data -> model -> fit -> evaluate -> figures, all into one run folder.

``train`` is the whole story; ``alexnet_tf.run_folder`` owns the folder (its layout, its lock,
its backup, and what may be written there), ``alexnet_tf.data`` the images, ``alexnet_tf.feed``
the batches, ``alexnet_tf.model`` the network and its optimizer.

Under ``distribute='data-parallel'`` every process runs this same code; process 0 alone writes the
run folder, and every process restores from its backup on resume (``alexnet_tf.distribute``).
"""

from __future__ import annotations

import contextlib
import time

import keras
import numpy as np
import pandas as pd

from . import distribute
from .augment import training_augmentation
from .config import TrainConfig
from .data import load_data
from .feed import fit_feed
from .hardware import describe_device, provenance
from .keras_internals import random_stream_variables
from .model import build_model, compile_model
from .run_folder import RunFolder, shown
from .saved_run import RunResult, evaluate_run, load_run
from .schedules import schedule_callbacks


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


def train(config: TrainConfig, callbacks=(), verbose=1) -> RunResult:
    """Run ``config`` end to end into its run folder: data -> model -> fit -> evaluation.
    ``verbose`` is Keras' (0, 1 a progress bar, 2 a line an epoch) or "line": one short line an epoch."""
    if verbose == "line":
        callbacks, verbose = [*callbacks, EpochLine()], 0
    dist = distribute.setup(config.distribute, config.batch_size)  # refused before any data is decoded
    run, config = RunFolder.open(config, writer=dist.writer)  # from here on, the config the run records
    with run:
        if run.finished:
            print(run.finished_line())
            return load_run(run.path)
        run.say_backend_change()
        device, on_gpu = describe_device()
        run.say(f"Training on {device}; precision {config.precision}, XLA {'on' if config.jit_compile else 'off'}")
        data = load_data(config)
        with precision_policy(config.precision):
            with dist.scope:  # every variable, the augmentation's random stream too, under the distribution
                seed_everything(config)
                augmentation = training_augmentation(config, data, on_gpu)
                feed = fit_feed(data, config.batch_size, config.seed, augmentation, dist)
                model = build_model(config, data, augmentation.layer if augmentation.in_model else None)
                compile_model(model, config, feed.steps)
                schedule = schedule_callbacks(config)
                initial_epoch = run.start(config, data, model)  # a new run recorded, or a resumed one restored
                record = FitRecord()
                model.fit(
                    feed.batches,
                    epochs=config.epochs,
                    initial_epoch=initial_epoch,
                    steps_per_epoch=feed.steps,
                    **feed.validation,
                    callbacks=[
                        *feed.callbacks,
                        _EpochSeeds(),
                        record,
                        *run.callbacks(initial_epoch > 0),
                        *schedule,
                        *callbacks,
                    ],
                    verbose=verbose if run.writer else 0,
                    shuffle=False,  # the data shuffles itself
                )
            record.raise_if_diverged(run, config)
            facts = fit_facts(config, dist, run, record, device, feed.images, resumed=initial_epoch > 0)
            return finish(run, model, data, config, dist, facts)


def fit_facts(config: TrainConfig, dist, run: RunFolder, record: FitRecord, device, images, resumed) -> dict:
    """What the metrics record of this session's fit beside the scores: where it ran, and how fast.
    ``dist`` is the run's ``distribute.Distribution``, ``images`` one epoch's training images (of
    every process)."""
    return {
        "device": device,
        "precision": config.precision,
        "jit_compile": config.jit_compile,
        "resumed": resumed,
        "distribute": config.distribute,
        "processes": dist.process_count,
        "replicas": dist.replicas,
        "fit_seconds": record.seconds,
        "wall_seconds": time.perf_counter() - run.opened,
        # training and validation passes of this session's epochs, per training image
        "images_per_second": images * record.epochs / record.seconds if record.epochs else 0.0,
    }


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


def finish(run: RunFolder, model, data, config: TrainConfig, dist, facts: dict) -> RunResult:
    """Save the final model, evaluate it into the run folder, and end the run (its backup goes last)."""
    if not run.writer:
        print(f"process {dist.process_index} of {dist.process_count}: trained; process 0 writes {run.path}")
        return RunResult(run.path, model, pd.DataFrame(), {}, None)
    history = run.history()
    run.save_model(model)
    run.record_models(model)
    if config.distribute == "data-parallel":
        # Its weights live on every device of every process; process 0 evaluates a local copy alone.
        model = run.model()
    metrics, report = evaluate_run(
        model, run, data.root, data.class_names, data.x_val, data.y_val, config.tta, history, data.val_split
    )
    # "code": what made the numbers (not part of the run's identity, so not in config.json).
    metrics.update(epochs=len(history), train_images=len(data.x_train), **facts, code=provenance())
    run.write_metrics(metrics)
    run.drop_backup()  # last: a kill before this point resumes into the evaluation again
    print(
        f"top-1 accuracy {metrics['top1_accuracy']:.3f}, top-5 accuracy {metrics['top5_accuracy']:.3f} "
        f"on {len(data.y_val)} {data.val_split} images. Run folder: {shown(run.path)}"
    )
    return RunResult(run.path, model, history, metrics, report)
