"""A run folder, ``runs/<name>/``: one run, one dataset, one split, one writer.

    config.json       the settings that ran (absolute paths, the precision and XLA chosen) and
                      ``data_fingerprint``, a hash of every image the run uses
    manifest.csv      those images: file, wnid, class index, words, split, size, sha256
    history.csv       one row an epoch; logs/ for TensorBoard
    backup/           while the run is unfinished: the last epoch's weights and optimizer state
                      (latest.weights.h5, training_metadata.json) and the epoch before's
                      (previous.weights.h5, previous_metadata.json), to fall back on
    best.keras, model.keras, metrics.json, per_class_<split>.csv, figures/
    evaluations/<name>/   evaluate's results on data other than the run's own

This module alone reads and writes that layout. What it guarantees:
- one writer: the process that trains holds an OS lock on ``<runs>/.<name>.lock`` for the whole
  run (released by the OS when the process ends, however it ends); another gets an error naming
  the folder and the pid holding it;
- one config: a folder that holds another config is refused, naming the differences;
- one dataset: a resume on images that differ from the manifest's is refused, with the
  differences counted; evaluate writes into the run's own files only for the run's own images;
- a broken backup falls back to the epoch before, saying so; broken models are named as such.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from data_prep import fsutil

from . import distribute
from .config import TrainConfig
from .data import class_descriptions

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the run folder is then unguarded
    fcntl = None

MANIFEST_COLUMNS = ["file", "wnid", "class_index", "words", "split", "size", "sha256"]


class RunFolderInUse(OSError):
    pass


class RunFolder:
    """``runs_dir/<run name>`` of ``config``. ``writer=False`` (data-parallel processes other than
    process 0) reads the backup but never writes anything."""

    def __init__(self, config: TrainConfig, writer: bool = True):
        self.opened = time.perf_counter()
        self.config = config
        self.path = Path(config.runs_dir) / config.run_name
        self.backup = self.path / "backup"
        self.writer = writer
        self._lock_file = None

    # --- identity -----------------------------------------------------------------------------

    def stored_config(self) -> TrainConfig | None:
        path = self.path / "config.json"
        return TrainConfig.from_json(path.read_text(), path) if path.is_file() else None

    def stored_fingerprint(self) -> str | None:
        path = self.path / "config.json"
        if not path.is_file():
            return None
        return json.loads(path.read_text()).get("data_fingerprint")

    def check_config(self, recorded: TrainConfig) -> None:
        """Refuse a folder that holds another config, naming what differs and the way out."""
        stored = self.stored_config()
        if stored is not None and stored != recorded:
            differences = "; ".join(stored.differences(recorded))
            raise FileExistsError(
                f"{self.path} holds a run with another config ({differences}). To keep both, pass --name NEW_NAME; "
                f"to continue that run, repeat its settings"
            )

    def say(self, line: str) -> None:
        """Print ``line`` from the process that writes the folder (one voice under data-parallel)."""
        if self.writer:
            print(line)

    @property
    def finished(self) -> bool:
        return (self.path / "metrics.json").is_file() and not self.backup.is_dir()

    @property
    def resuming(self) -> bool:
        return self.backup.is_dir()

    # --- one writer -----------------------------------------------------------------------------

    def lock(self) -> RunFolder:
        """Hold the folder's lock until ``unlock`` or the end of the process; a second process gets
        a one-line error naming the folder and the pid that holds it. Use as ``with run.lock():``."""
        if not self.writer or self._lock_file is not None:
            return self
        fsutil.check_writable(self.path)  # before minutes of decoding, not after
        if fcntl is None:
            return self
        path = self._lock_path
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(path, "a+")  # noqa: SIM115 (held open for the run: the lock lives as long as the file)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    handle.close()
                    raise
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise RunFolderInUse(
                    f"{self.path} is in use by process {holder}, which is training or evaluating "
                    f"it; wait for it to end, or pass --name NEW_NAME for another run"
                ) from None
            try:  # the holder before us may have removed the file as we opened it: lock the one in place
                if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle
        return self

    @property
    def _lock_path(self) -> Path:
        # Beside the folder, not in it: a start that fails before the data loads leaves no run folder.
        return self.path.parent / f".{self.path.name}.lock"

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_path.unlink(missing_ok=True)  # while still held, so no one locks a file on its way out
            self._lock_file.close()  # closing releases the lock
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unlock()

    # --- one dataset ----------------------------------------------------------------------------

    def start(self, recorded: TrainConfig, data) -> None:
        """Record a new run (config.json with the data's fingerprint, manifest.csv), or check that a
        resumed one sees the images it started with. Nothing is written where ``writer`` is False."""
        self.say(
            f"Data: {data.root}: {len(data.x_train)} train and {len(data.x_val)} {data.val_split} images, "
            f"{data.num_classes} classes"
        )
        rows = manifest_rows(data)
        fingerprint = rows_fingerprint(rows)
        if self.resuming and (self.path / "manifest.csv").is_file():
            stored = self.stored_fingerprint()
            if stored != fingerprint:
                old = read_manifest(self.path / "manifest.csv")
                counts = compare_manifests(old, rows, by_content=stored is not None)
                if any(counts.values()) or stored is not None:
                    raise ValueError(
                        f"the data changed since {self.path} started ({describe_changes(counts)}): its backup was "
                        f"trained on the images of its manifest.csv. Restore them to resume, or pass --name NEW_NAME "
                        f"to start a new run on the data as it is now"
                    )
                # A run started before fingerprints: the same files, now fingerprinted.
                print(f"{self.path}: recording the data's fingerprint (the run began before runs kept one)")
            elif stored is not None:
                return
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        record = {**json.loads(recorded.to_json()), "data_fingerprint": fingerprint}
        write_atomically(self.path / "config.json", json.dumps(record, indent=2, sort_keys=True))
        write_manifest(self.path / "manifest.csv", rows)

    # --- resume ---------------------------------------------------------------------------------

    def restore(self, model) -> int:
        """Load the backup into ``model`` (compiled) and return the epoch to go on from (0: none).
        Falls back to the epoch before when the latest backup does not load, saying so."""
        if not self.backup.is_dir():
            return 0
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        failures = []
        for weights, meta in _BACKUPS:
            if not (self.backup / weights).is_file():
                continue
            try:
                epoch = int(json.loads((self.backup / meta).read_text())["epoch"])
                model.load_weights(self.backup / weights)
            except Exception as err:  # noqa: BLE001 (h5py, JSON and Keras each raise their own kind)
                failures.append(f"{self.backup / weights} ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
                continue
            if failures:
                print(f"{failures[0]} does not load: resuming from the epoch before's backup, {self.backup / weights}")
            return epoch
        if failures:
            raise ValueError(
                f"no backup of {self.path} loads: {'; '.join(failures)}. Delete {self.backup} to train "
                f"this run again from epoch 1, or pass --name NEW_NAME for a new run"
            )
        return 0

    def callbacks(self, resuming: bool) -> list:
        """What writes the folder during fit, in order: the CSV row of an epoch is written before
        the backup that marks the epoch done. Empty for processes that do not write."""
        if not self.writer:
            return []
        callbacks = [
            keras.callbacks.CSVLogger(self.path / "history.csv", append=resuming),
            _FiniteCheckpoint(self.path / "best.keras", monitor="val_accuracy", save_best_only=True),
        ]
        if _tensorboard_available():
            callbacks.append(keras.callbacks.TensorBoard(self.path / "logs"))
        return callbacks + [_EpochBackup(self.backup)]

    def drop_backup(self) -> None:
        if self.writer:
            shutil.rmtree(self.backup, ignore_errors=True)


_BACKUPS = (("latest.weights.h5", "training_metadata.json"), ("previous.weights.h5", "previous_metadata.json"))


class _EpochBackup(keras.callbacks.Callback):
    """After each epoch: the weights and optimizer state, written under a temporary name and
    renamed into place, with the epoch before's kept as ``previous``, so that a file cut short
    by a kill, a full disk or a crash never leaves a run that cannot resume."""

    def __init__(self, backup_dir: Path):
        super().__init__()
        self.backup_dir = Path(backup_dir)

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)):
            return  # a diverged epoch is never a point to resume from
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        (latest, latest_meta), (previous, previous_meta) = _BACKUPS
        tmp = self.backup_dir / f".tmp-{os.getpid()}.weights.h5"
        with distribute.outside_distribution():
            self.model.save_weights(tmp, overwrite=True)
        tmp_meta = self.backup_dir / f".tmp-{os.getpid()}.json"
        tmp_meta.write_text(json.dumps({"epoch": epoch + 1, "batch": 0}))
        if (self.backup_dir / latest).is_file() and (self.backup_dir / latest_meta).is_file():
            os.replace(self.backup_dir / latest, self.backup_dir / previous)
            os.replace(self.backup_dir / latest_meta, self.backup_dir / previous_meta)
        os.replace(tmp, self.backup_dir / latest)
        os.replace(tmp_meta, self.backup_dir / latest_meta)


class _FiniteCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that never saves an epoch whose loss is NaN or infinite: a diverged run
    must not leave a best.keras that looks usable (its accuracy can look best by chance)."""

    def on_epoch_end(self, epoch, logs=None):
        if np.isfinite((logs or {}).get("loss", 0.0)):
            with distribute.outside_distribution():
                super().on_epoch_end(epoch, logs)


def _tensorboard_available() -> bool:
    """Keras' TensorBoard callback writes through TensorFlow's summary API, whatever the backend."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


# --- the manifest and the data's fingerprint -------------------------------------------------------


def file_record(path) -> tuple[int, str]:
    content = Path(path).read_bytes()
    return len(content), hashlib.sha256(content).hexdigest()


def manifest_rows(data) -> list[dict]:
    """One row per image the run uses (``data``: ``alexnet_tf.data.Data``), with its size and sha256."""
    words = class_descriptions(data.root, data.class_names)
    rows = []
    for split, files, labels in data.splits():
        for file, label in zip(files, labels):
            size, digest = file_record(file)
            rows.append(
                {
                    "file": os.path.relpath(file, data.root),
                    "wnid": data.class_names[label],
                    "class_index": int(label),
                    "words": words[label],
                    "split": split,
                    "size": size,
                    "sha256": digest,
                }
            )
    return rows


def shown(path) -> str:
    """``path`` as a message gives it: relative where it lies below the working folder or beside it
    (``../runs/NAME`` in a notebook), absolute otherwise, so that printouts hold no machine's paths."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # on Windows, another drive has no relative path
        return str(path)
    return relative if not relative.startswith(os.path.join("..", "..")) else str(path)


def rows_fingerprint(rows) -> str:
    """sha256 of what defines the data: each image's split, name, class and content."""
    digest = hashlib.sha256()
    for r in rows:
        digest.update(
            f"{r['split']}\t{r['file']}\t{r['wnid']}\t{r['class_index']}\t{r['size']}\t{r['sha256']}\n".encode()
        )
    return digest.hexdigest()


def write_manifest(path: Path, rows) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def compare_manifests(old, new, by_content=True) -> dict:
    """How many images are gone, new, or changed (content, size or class) between two manifests."""

    def key(r):
        return r["split"], r["file"]

    def value(r):
        return (
            (str(r["class_index"]), str(r.get("size", "")), r.get("sha256", ""))
            if by_content
            else (str(r["class_index"]),)
        )

    before, after = {key(r): value(r) for r in old}, {key(r): value(r) for r in new}
    return {
        "gone": len(before.keys() - after.keys()),
        "new": len(after.keys() - before.keys()),
        "changed": sum(before[k] != after[k] for k in before.keys() & after.keys()),
    }


def describe_changes(counts) -> str:
    return ", ".join(f"{n} image(s) {what}" for what, n in counts.items() if n) or "the same files, in another order"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_saved_model(path):
    """``keras.models.load_model``, with an error naming the file when it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {path.parent} a finished run folder?")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # noqa: BLE001 (a cut zip shows as "File not found", KeyError or BadZipFile)
        raise ValueError(
            f"{path} is corrupt or not a Keras model ({type(err).__name__}); train the run again or restore the file"
        ) from None
