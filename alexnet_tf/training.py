"""Training: data -> model -> fit -> evaluate -> figures, all into one run folder.

A run folder ``runs/<name>/`` holds: config.json, manifest.csv (the exact images used),
history.csv, model.keras (final) and best.keras (best on validation), metrics.json,
per_class.csv, figures/*.png, logs/ (TensorBoard) and, while a run is unfinished, backup/
(from which a killed run resumes where it stopped).

Under ``distribute='data-parallel'`` every process runs this same code; process 0 alone writes the
run folder, and every process restores from its backup on resume (``alexnet_tf.distribute``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from . import distribute, plots, tiny_imagenet
from .augment import batch_mixing, fast_augmenter, image_data_generator
from .config import TrainConfig
from .data import class_descriptions, load_images, select_files
from .evaluate import evaluate_predictions, predict, prediction_table
from .feed import epoch_callbacks, steps_per_epoch, training_batches, validation_batch_size
from .hardware import choose_jit_compile, choose_precision, describe_device, gpu_compute_capability
from .model import alexnet_model, channel_stats
from .schedules import OneCycle, WarmupCosine, lr_schedule, plateau_callback

@dataclass
class RunResult:
    run_dir: Path
    model: keras.Model
    history: pd.DataFrame
    metrics: dict
    report: pd.DataFrame | None  # None in the processes that do not write (data-parallel)


def prepare_data(data, work_dir="data") -> Path:
    """A dataset root from ``data``: a folder, a Tiny ImageNet zip (extracted once), or None for
    the synthetic set (generated once)."""
    from data_prep import extract, make_synthetic

    if data is None:
        return make_synthetic(work_dir)
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"{data} does not exist: give a Tiny ImageNet folder or zip")
    return extract(data, work_dir) if data.suffix == ".zip" else data


def data_work_dir(config: TrainConfig) -> Path:
    """Where generated or extracted data goes: ``data/`` beside the runs folder."""
    return Path(config.runs_dir).resolve().parent / "data"


def _class_names(root, config: TrainConfig) -> list[str]:
    """The classes ``config.classes`` selects, in the grammar of ``data_prep subset --classes``."""
    if config.classes is None:
        return tiny_imagenet.dataset_classes(root)
    from data_prep.subset import choose_classes

    return choose_classes(root, config.classes, config.seed)


def write_manifest(path: Path, root, splits, class_names):
    words = class_descriptions(root, class_names)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "wnid", "class_index", "words", "split"])
        for split, files, labels in splits:
            for file, label in zip(files, labels):
                writer.writerow([os.path.relpath(file, root), class_names[label], int(label), words[label], split])


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.schedule == "cosine":
        return WarmupCosine(config.learning_rate, total, min(config.warmup_epochs * steps_per_epoch, total - 1))
    if config.schedule == "onecycle":
        return OneCycle(config.learning_rate, total)
    return config.learning_rate


def _optimizer(config: TrainConfig, steps_per_epoch: int):
    rate = _learning_rate(config, steps_per_epoch)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.SGD(rate, momentum=config.momentum)


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


class _FiniteCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that never saves an epoch whose loss is NaN or infinite: a diverged run
    must not leave a best.keras that looks usable (its accuracy can look best by chance)."""

    def on_epoch_end(self, epoch, logs=None):
        if np.isfinite((logs or {}).get("loss", 0.0)):
            with distribute.outside_distribution():
                super().on_epoch_end(epoch, logs)


class _Backup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that saves from process 0 alone. Every process restores the backup when a
    run resumes (all replicas must start alike); with ``writes=False`` (the other processes) it
    never saves or deletes it."""

    def __init__(self, backup_dir, writes=True):
        super().__init__(backup_dir)
        self.writes = writes

    def _save_model(self):
        if self.writes:
            with distribute.outside_distribution():
                super()._save_model()

    def on_train_end(self, logs=None):
        if self.writes:
            super().on_train_end(logs)


class _EpochSeeds(keras.callbacks.Callback):
    """Start every random stream inside the model (dropout, augmentation on JAX and PyTorch) at a
    point set by the epoch. Keras does not save these streams with the weights, so without this a
    resumed run would draw its first epoch's numbers again instead of those an uninterrupted run
    draws. A stream is (seed, counter) and each draw adds 1 to the counter: epoch e starts at e * 2**20."""

    def on_train_begin(self, logs=None):
        self.streams = [(v, keras.ops.convert_to_numpy(v.value)) for v in self.model.variables
                        if v.path.endswith("seed_generator_state")]

    def on_epoch_begin(self, epoch, logs=None):
        for variable, initial in self.streams:
            variable.assign(initial + np.array([0, epoch * 2**20], dtype=initial.dtype))


class _NaNGuard(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN, remembering when it fired so ``train`` can say what to do."""

    stopped_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.stopped_epoch = self.epoch
        super().on_batch_end(batch, logs)


def _training_data(config, x, y, num_classes, augment_in_model, shard=None):
    """Batches of (uint8 or float images, one-hot labels), augmented as the config says."""
    one_hot = np.eye(num_classes, dtype="float32")
    if config.augmentation == "classic":
        if config.mixing:
            raise ValueError("mixing (MixUp/CutMix) works with augmentation='fast' or 'none'")
        if keras.backend.backend() != "tensorflow":
            raise ValueError("augmentation='classic' is ImageDataGenerator, which needs TensorFlow; on the "
                             f"{keras.backend.backend()} backend use augmentation='fast' (the same transforms)")
        return image_data_generator(config.augment, config.seed).flow(
            x, one_hot[y], batch_size=config.batch_size, shuffle=True, seed=config.seed)
    augment = fast_augmenter(config.augment, config.seed) if config.augmentation == "fast" and not augment_in_model else None
    mix = batch_mixing(config.mixing, num_classes, config.seed) if config.mixing else None
    return training_batches(x, one_hot[y], config.batch_size, config.seed, augment, mix, shard)


def _tensorboard_available() -> bool:
    """Keras' TensorBoard callback writes through TensorFlow's summary API, whatever the backend."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def train(config: TrainConfig, callbacks=(), verbose=1) -> RunResult:
    """Run ``config`` end to end and return the run folder, model, history, metrics and report."""
    device, on_gpu = describe_device()
    # A run keeps the precision and XLA setting it started with, so that "auto" resumes or reloads
    # it on other hardware (a Colab T4 today, an A100 tomorrow) instead of refusing it.
    started_with = _stored_config(Path(config.runs_dir) / config.run_name)
    precision = choose_precision(config.precision, gpu_compute_capability() if on_gpu else None)
    jit_compile = choose_jit_compile(config.jit_compile, on_gpu, keras.backend.backend())
    if started_with is not None and config.precision == "auto":
        precision = started_with.precision
    if started_with is not None and config.jit_compile is None:
        jit_compile = started_with.jit_compile
    if distribute.is_writer():
        print(f"Training on {device}; precision {precision}, XLA {'on' if jit_compile else 'off'}")
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return _train(config, precision, jit_compile, on_gpu, device, callbacks, verbose)
    finally:  # the policy is global state: leave it as the caller had it
        keras.mixed_precision.set_global_policy(previous_policy)


def _stored_config(run_dir: Path) -> TrainConfig | None:
    path = run_dir / "config.json"
    return TrainConfig.from_json(path.read_text(), path) if path.is_file() else None


def _check_run_folder(run_dir: Path, recorded: TrainConfig) -> None:
    """Refuse a run folder that holds another config, naming what differs and the way out."""
    stored = _stored_config(run_dir)
    if stored is not None and stored != recorded:
        differences = "; ".join(stored.differences(recorded))
        raise FileExistsError(
            f"{run_dir} holds a run with another config ({differences}). To keep both, pass --name NEW_NAME; "
            f"to continue that run, repeat its settings")


def _train(config, precision, jit_compile, on_gpu, device, callbacks, verbose) -> RunResult:
    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":  # JAX on a CPU is deterministic
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    run_dir = Path(config.runs_dir) / config.run_name
    backup_dir = run_dir / "backup"
    writer = distribute.is_writer()  # process 0 (the only one, unless data-parallel runs several)
    # config.json records what actually ran: absolute paths, the precision and XLA setting chosen.
    recorded = config.resolved().replace(precision=precision, jit_compile=jit_compile)
    _check_run_folder(run_dir, recorded)
    finished = finished_run(config)
    if finished is not None:
        if writer:
            print(f"{run_dir} is a finished run of this config: loading it, not training again")
        return finished
    resuming = backup_dir.is_dir()
    # Checked before minutes of decoding, not after.
    from data_prep.fsutil import check_writable

    if writer:
        check_writable(run_dir)
    distribute.check(config.distribute, config.batch_size)

    root = prepare_data(config.data, data_work_dir(config))
    class_names = _class_names(root, config)
    if len(class_names) < 2:
        raise ValueError(f"classes={config.classes!r} selects {len(class_names)} class; a classifier needs at least "
                         f"2 (e.g. --classes first:2, or two names separated by a comma)")
    train_files, y_train, class_names = select_files(root, "train", class_names, config.images_per_class,
                                                     config.seed)
    val_files, y_val, _ = select_files(root, config.val_split, class_names)
    if np.any(y_val < 0):
        raise tiny_imagenet.DataFormatError(
            f"{root / config.val_split} has no labels (as Tiny ImageNet's test images), so it cannot validate a "
            f"run: use val_split='val' (--val-split val) or a split with labels")
    x_train = load_images(train_files, config.image_size)
    x_val = load_images(val_files, config.image_size)
    local_devices = distribute.local_device_count(config.distribute)
    validation_batch = validation_batch_size(len(x_val), local_devices)
    # Written once the data is known to load, so a failed start leaves no run folder behind; by
    # rename, so another process reading config.json never sees half of it.
    if writer:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(run_dir / "config.json", recorded.to_json())
        write_manifest(run_dir / "manifest.csv", root,
                       [("train", train_files, y_train), (config.val_split, val_files, y_val)], class_names)
    num_classes = len(class_names)
    if writer:
        print(f"Data: {root}: {len(x_train)} train and {len(x_val)} {config.val_split} images, {num_classes} classes")

    # Under data-parallel every process feeds its share of each global batch, even when it is the only one.
    shard = (distribute.process_index(), distribute.process_count()) if config.distribute == "data-parallel" else None
    steps = steps_per_epoch(len(x_train), config.batch_size, sharded=shard is not None)
    augment_in_model = config.augmentation == "fast" and (on_gpu or keras.backend.backend() != "tensorflow")
    nan_guard = _NaNGuard()
    epoch_counter = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs_done.append(epoch))
    epochs_done = []
    # Order matters: the CSV row of an epoch is written before the backup that marks it done.
    if writer:
        run_callbacks = [
            nan_guard,
            epoch_counter,
            keras.callbacks.CSVLogger(run_dir / "history.csv", append=resuming),
            _FiniteCheckpoint(run_dir / "best.keras", monitor="val_accuracy", save_best_only=True),
            _Backup(backup_dir),
        ]
        if _tensorboard_available():
            run_callbacks.insert(-1, keras.callbacks.TensorBoard(run_dir / "logs"))
    else:
        run_callbacks = [nan_guard, epoch_counter, _Backup(backup_dir, writes=False)]
    if config.schedule == "step":
        run_callbacks.append(keras.callbacks.LearningRateScheduler(
            partial(lr_schedule, base_lr=config.learning_rate, drops=tuple(config.lr_drops), factor=0.5)))
    elif config.schedule == "plateau":
        run_callbacks.append(plateau_callback())
    if config.early_stopping_patience:
        run_callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=config.early_stopping_patience,
                                                           restore_best_weights=False))
    one_hot_val = np.eye(num_classes, dtype="float32")[y_val]
    scope, strategy = distribute.scope(config.distribute)
    with scope:
        mean, variance = channel_stats(x_train)
        model = alexnet_model((config.image_size, config.image_size, 3), num_classes, config.variant, config.lrn,
                              config.dropout, config.weight_decay, config.batch_norm, config.preprocessing,
                              mean, variance, fast_augmenter(config.augment, config.seed) if augment_in_model else None)
        if config.init_weights:
            copied = load_matching_weights(model, config.init_weights)
            print(f"Started from {config.init_weights}: weights of {copied} layers")
        if config.freeze_features:
            for layer in model.layers:
                if layer.name.startswith(("conv", "bn")):
                    layer.trainable = False
        model.compile(optimizer=_optimizer(config, steps),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                               keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5_accuracy")],
                      jit_compile=jit_compile)
        fit_started = time.perf_counter()  # inside the scope: data-parallel's fit reads it
        batches = _training_data(config, x_train, y_train, num_classes, augment_in_model, shard)
        fit = model.fit(batches, epochs=config.epochs, steps_per_epoch=steps, validation_data=(x_val, one_hot_val),
                        validation_batch_size=validation_batch,
                        callbacks=epoch_callbacks(batches) + [_EpochSeeds()] + run_callbacks + list(callbacks),
                        verbose=verbose if writer else 0, shuffle=False)  # the data shuffles itself
    fit_seconds = time.perf_counter() - fit_started
    if nan_guard.stopped_epoch is not None:
        # Its backup holds non-finite weights: resuming from it could only diverge again.
        if writer:
            shutil.rmtree(backup_dir, ignore_errors=True)
        raise FloatingPointError(
            f"training diverged: the loss became NaN or infinite in epoch {nan_guard.stopped_epoch + 1}, so no model "
            f"of that epoch was kept. Run again with a lower --learning-rate (now {config.learning_rate}) or "
            f"--schedule cosine with warm-up; that is a new run folder. This one: {run_dir}")

    replicas = distribute.replica_count(config.distribute, strategy)
    if not writer:
        print(f"process {distribute.process_index()} of {distribute.process_count()}: trained; process 0 writes "
              f"{run_dir}")
        return RunResult(run_dir, model, pd.DataFrame(fit.history), {}, None)
    history = read_history(run_dir / "history.csv")
    model.save(run_dir / "model.keras")
    if config.distribute == "data-parallel":
        # Its weights live on every device of every process; process 0 evaluates a local copy alone.
        model = keras.models.load_model(run_dir / "model.keras")
    metrics, report = evaluate_run(model, run_dir, root, class_names, x_val, y_val, config.tta, history)
    images_per_epoch = steps * config.batch_size if shard is not None else len(x_train)
    metrics.update(device=device, precision=precision, jit_compile=jit_compile, epochs=len(history),
                   train_images=int(len(x_train)), resumed=resuming, distribute=config.distribute,
                   processes=distribute.process_count(), replicas=replicas,
                   fit_seconds=fit_seconds, wall_seconds=time.perf_counter() - started,
                   # training and validation passes of this session's epochs, per training image
                   images_per_second=images_per_epoch * len(epochs_done) / fit_seconds)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"top-1 accuracy {metrics['top1_accuracy']:.3f}, top-5 accuracy {metrics['top5_accuracy']:.3f} "
          f"on {len(y_val)} {config.val_split} images. Run folder: {run_dir}")
    return RunResult(run_dir, model, history, metrics, report)


def _write_atomically(path: Path, text: str) -> None:
    from data_prep.fsutil import temp_name

    tmp = path.with_name(temp_name(path.name))
    tmp.write_text(text)
    os.replace(tmp, path)


def finished_run(config: TrainConfig) -> RunResult | None:
    """The finished run of ``config`` (what ``train`` would load instead of training), or None."""
    run_dir = Path(config.runs_dir) / config.run_name
    if (run_dir / "metrics.json").is_file() and not (run_dir / "backup").is_dir():
        return load_run(run_dir)
    return None


def load_run(run_dir) -> RunResult:
    """A finished run folder as a RunResult (final model, history, metrics, per-class report)."""
    run_dir = Path(run_dir)
    return RunResult(run_dir, keras.models.load_model(run_dir / "model.keras"), read_history(run_dir / "history.csv"),
                     json.loads((run_dir / "metrics.json").read_text()), pd.read_csv(run_dir / "per_class_val.csv"))


def read_history(path) -> pd.DataFrame:
    """history.csv, one row per epoch (a resumed run may have written an epoch twice: keep the last)."""
    history = pd.read_csv(path)
    return history.drop_duplicates("epoch", keep="last").reset_index(drop=True)


def evaluate_run(model, run_dir, root, class_names, images, labels, tta=False, history=None, split="val"):
    """Metrics, per-class report and every figure of a run into ``run_dir``."""
    run_dir = Path(run_dir)
    probs = predict(model, images, tta=tta)
    names = class_descriptions(root, class_names)
    metrics, report, confusion = evaluate_predictions(labels, probs, class_names, names)
    metrics["split"] = split
    report.to_csv(run_dir / f"per_class_{split}.csv", index=False)
    figures = run_dir / "figures"
    if history is not None and len(history):
        plots.plot_history(history, figures / "history.png")
        plots.plot_errors(history, figures / "errors.png")
    plots.plot_per_class_accuracy(report, figures / f"per_class_{split}.png")
    plots.plot_confusion(confusion, names, figures / f"confusion_{split}.png")
    plots.plot_predictions(images, labels, probs, names, figures / f"predictions_{split}.png")
    plots.plot_conv1_filters(model, figures / "conv1_filters.png")
    import matplotlib.pyplot as plt

    plt.close("all")
    return metrics, report


def evaluate_saved(run_dir, split="val", data=None, export=None, tta=None) -> dict:
    """Re-evaluate a saved run on any split; ``export`` also writes the legacy HDF5 format.

    A split without labels (Tiny ImageNet's test images) cannot be scored: its predictions go to
    ``predictions_<split>.csv`` in the run folder instead (see ``prediction_table``)."""
    run_dir = Path(run_dir)
    for name in ("model.keras", "config.json", "manifest.csv"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: is {run_dir} a finished run folder?")
    config = TrainConfig.from_json((run_dir / "config.json").read_text(), run_dir / "config.json")
    from data_prep.fsutil import check_writable

    try:  # checked before predicting: the metrics and figures are written into the run folder
        check_writable(run_dir)
    except PermissionError:
        raise PermissionError(f"cannot write to the run folder {run_dir}: evaluate writes its metrics and figures "
                              f"there. Copy the folder somewhere writable and evaluate the copy") from None
    model = keras.models.load_model(run_dir / "model.keras")
    root = prepare_data(data if data is not None else config.data, data_work_dir(config))
    class_names = list(pd.read_csv(run_dir / "manifest.csv").drop_duplicates("class_index")
                       .sort_values("class_index")["wnid"])
    # The run's own classes, so a folder holding only this split (e.g. test images to label) is enough.
    files, labels = tiny_imagenet.split_files(root, split, class_names)
    if not files:
        raise tiny_imagenet.DataFormatError(f"{Path(root) / split} has no images of the run's classes")
    labels = np.asarray(labels, dtype=np.int32)
    images = load_images(files, config.image_size)
    tta = config.tta if tta is None else tta
    if np.all(labels < 0):
        table = prediction_table([os.path.relpath(f, root) for f in files], predict(model, images, tta=tta),
                                 class_names, class_descriptions(root, class_names))
        path = run_dir / f"predictions_{split}.csv"
        table.to_csv(path, index=False)
        print(f"{split}: {len(files)} images without labels, so no score; their predictions: {path}")
        metrics = {"split": split, "images": len(files), "predictions": str(path)}
    else:
        history = read_history(run_dir / "history.csv") if (run_dir / "history.csv").is_file() else None
        metrics, _ = evaluate_run(model, run_dir, root, class_names, images, labels, tta, history, split)
    if export:
        model.save(export)  # a path ending in .h5 writes the legacy HDF5 format
    return metrics
