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
- one config: a folder that holds another config is refused, naming the differences, and a
  folder that holds files but no run is never written into;
- one dataset: a resume on images that differ from the manifest's is refused, with the
  differences counted; evaluate writes into the run's own files only for the run's own images;
- a broken backup falls back to the epoch before, saying so; broken models are named as such;
- a full disk stops the run before a save that would not fit (``DiskFull``), with the last good
  backup kept, so that the same command resumes once there is space.
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
from data_prep.images import class_descriptions

from . import distribute
from .config import TrainConfig

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the run folder is then unguarded
    fcntl = None

MANIFEST_COLUMNS = ["file", "wnid", "class_index", "words", "split", "size", "sha256"]


class RunFolderInUse(OSError):
    pass


class DiskFull(OSError):
    """Too little free space for the next save: raised before writing, so the backup is intact."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


class RunFolder:
    """``runs_dir/<run name>`` of ``config`` (or the folder at ``path``, as evaluate finds it).
    ``writer=False`` (data-parallel processes other than process 0) reads the backup but never
    writes anything."""

    def __init__(self, config: TrainConfig | None = None, writer: bool = True, path=None):
        self.opened = time.perf_counter()
        self.path = Path(path) if path is not None else Path(config.runs_dir) / config.run_name
        self.backup = self.path / "backup"
        self.writer = writer
        self._lock_file = None

    @classmethod
    def at(cls, path) -> RunFolder:
        """The run folder at ``path`` (a finished run, as evaluate and predict find it)."""
        return cls(path=Path(path))

    @classmethod
    def open(cls, config: TrainConfig, writer: bool = True) -> tuple[RunFolder, TrainConfig]:
        """``config``'s run folder, locked for this process, and the one config the run uses from
        here on (``TrainConfig.for_run``: absolute paths, the precision and XLA chosen, or those the
        run started with), refused where the folder holds another run (``check_config``). Use as
        ``run, config = RunFolder.open(config)`` then ``with run:``, which unlocks it."""
        run = cls(config, writer)
        run.lock()
        try:
            started_with = run.config()
            config = config.for_run(started_with)
            run.check_config(config, started_with)
        except BaseException:
            run.unlock()
            raise
        return run, config

    # --- the layout -----------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def manifest_file(self) -> Path:
        return self.path / "manifest.csv"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def best_file(self) -> Path:
        return self.path / "best.keras"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    def per_class_file(self, split: str) -> Path:
        return self.path / f"per_class_{split}.csv"

    def confusion_file(self, split: str) -> Path:
        return self.path / f"confusion_{split}.csv"

    def predictions_file(self, split: str) -> Path:
        return self.path / f"predictions_{split}.csv"

    def evaluation(self, name: str) -> RunFolder:
        """``evaluations/<name>/``: a separate evaluation's folder, with the layout of a run's results."""
        return RunFolder(path=self.path / "evaluations" / name)

    # --- reads ----------------------------------------------------------------------------------

    def require_files(self) -> None:
        """Refuse a folder that lacks what evaluate and predict read (model, config, manifest)."""
        for needed in (self.model_file, self.config_file, self.manifest_file):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed} not found: is {self.path} a finished run folder?")

    def config(self) -> TrainConfig | None:
        """The config the run recorded (None: the folder holds no run yet)."""
        path = self.config_file
        return TrainConfig.from_json(path.read_text(), path) if path.is_file() else None

    def model(self):
        """The final model (``load_saved_model``: an error naming the file when missing or damaged)."""
        return load_saved_model(self.model_file)

    def manifest(self) -> list[dict]:
        """manifest.csv's rows: every image the run used."""
        return read_manifest(self.manifest_file)

    def classes(self) -> list[tuple[str, str]]:
        """``(wnid, words)`` of each class, in the order of the model's outputs."""
        by_index = {int(r["class_index"]): (r["wnid"], r["words"]) for r in self.manifest()}
        return [by_index[i] for i in sorted(by_index)]

    def class_names(self) -> list[str]:
        """The wnids of the run's classes, in the order of the model's outputs."""
        return [wnid for wnid, _ in self.classes()]

    def history(self):
        """history.csv (``read_history``); None where the folder has none."""
        return read_history(self.history_file) if self.history_file.is_file() else None

    def metrics(self) -> dict:
        return json.loads(self.metrics_file.read_text())

    def per_class(self, split: str):
        """The per-class report of ``split`` (None where the run has none)."""
        import pandas as pd

        path = self.per_class_file(split)
        return pd.read_csv(path) if path.is_file() else None

    def write_metrics(self, metrics: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fsutil.write_text_atomically(self.metrics_file, json.dumps(metrics, indent=2))

    def save_model(self, model) -> None:
        """The final model.keras, once the disk has room for it."""
        self.require_space(model, self.model_file, "the final model.keras")
        model.save(self.model_file)

    # --- identity -----------------------------------------------------------------------------

    def stored_fingerprint(self) -> str | None:
        return self._stored_record().get("data_fingerprint")

    def stored_backend(self) -> str | None:
        """The Keras backend the run started on (None for a run from before folders recorded it)."""
        return self._stored_record().get("backend")

    def _stored_record(self) -> dict:
        path = self.config_file
        return json.loads(path.read_text()) if path.is_file() else {}

    def check_config(self, recorded: TrainConfig, stored: TrainConfig | None = None) -> None:
        """Refuse a folder that holds another config than ``recorded`` (``stored``, read where not
        given), naming what differs and the way out, and a folder (or file) that holds something
        other than a run: nothing is written into it. The name is not compared: the folder is the
        name, whether given or the automatic one."""
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(
                f"{self.path} is a file, not a run folder, so nothing was written: pass --name NEW_NAME "
                f"(or another --runs-dir) for the run"
            )
        stored = stored if stored is not None else self.config()
        if stored is None:
            if self.path.is_dir() and any(not e.name.startswith(".tmp-") for e in self.path.iterdir()):
                raise FileExistsError(
                    f"{self.path} holds files but no run (it has no config.json), so nothing was written "
                    f"there: pass --name NEW_NAME (or another --runs-dir) for the run, or move that folder's "
                    f"files away"
                )
            return
        stored, ours = stored.identity(), recorded.identity()
        if stored != ours:
            differences = "; ".join(stored.differences(ours))
            raise FileExistsError(
                f"{self.path} holds a run with another config ({differences}). To keep both, pass --name NEW_NAME; "
                f"to continue that run, repeat its settings"
            )

    def finished_line(self) -> str:
        """What ``train`` says when it loads this finished run instead of training it, with the
        backend it was trained on, and the way to train it anew where that is not this one's."""
        trained_on, now = self.stored_backend(), keras.backend.backend()
        line = f"{shown(self.path)} is a finished run of this config"
        if trained_on is not None:
            line += f", trained on {trained_on}"
        line += ": loading it, not training again"
        if trained_on is not None and trained_on != now:
            line += f". To train it anew on {now}, pass --name NEW_NAME"
        return line

    def say_backend_change(self) -> None:
        """One line when this run resumes under another Keras backend than it started on."""
        started_on, now = self.stored_backend(), keras.backend.backend()
        if self.resuming and started_on is not None and started_on != now:
            self.say(
                f"{shown(self.path)} started on {started_on} and resumes on {now}: the weights carry over, "
                f"the random numbers of the epochs to come differ from those {started_on} would draw"
            )

    def say(self, line: str) -> None:
        """Print ``line`` from the process that writes the folder (one voice under data-parallel)."""
        if self.writer:
            print(line)

    @property
    def finished(self) -> bool:
        return self.metrics_file.is_file() and not self.backup.is_dir()

    @property
    def resuming(self) -> bool:
        return self.backup.is_dir()

    # --- one writer -----------------------------------------------------------------------------

    def lock(self, way_out="pass --name NEW_NAME for another run") -> RunFolder:
        """Hold the folder's lock until ``unlock`` or the end of the process; a second process gets
        a one-line error naming the folder, the pid that holds it and ``way_out`` (what the second
        one can do instead, in its own command's options). Use as ``with run.lock():``."""
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
                    f"it; wait for it to end, or {way_out}"
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

    def holder(self) -> str | None:
        """The pid of the process holding the folder's lock (None: no one), asked without taking
        the lock and without creating its file."""
        if fcntl is None or self._lock_file is not None:
            return None
        try:
            handle = open(self._lock_path)  # noqa: SIM115 (closed below, after the probe)
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return handle.read().strip() or "unknown"
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def backup_epoch(self) -> int | None:
        """The last epoch the backup holds (None: no readable backup)."""
        for _, meta in _BACKUPS:
            try:
                return int(json.loads((self.backup / meta).read_text())["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return None

    def saved(self) -> str:
        """What the folder keeps of an unfinished run, in words (for a stopped run's last line)."""
        epoch = self.backup_epoch()
        if epoch is None:
            return f"no epoch of {shown(self.path)} was saved yet"
        return f"{shown(self.backup)} holds epoch {epoch}"

    @property
    def _lock_path(self) -> Path:
        # Beside the folder, not in it: a start that fails before the data loads leaves no run folder.
        # Absolute, so that the folder given as "." or "runs/x/" has the lock of "runs/x".
        path = Path(os.path.abspath(self.path))
        return path.parent / f".{path.name}.lock"

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

    def start(self, config: TrainConfig, data, model) -> int:
        """Start the run: record a new one (``record``), or check that a resumed one sees the
        images it started with and load its backup into ``model`` (``restore``). Returns the epoch
        to go on from (0: a new run). Nothing is written where ``writer`` is False."""
        self.say(
            f"Data: {shown(data.root)}: {len(data.x_train)} train and {len(data.x_val)} {data.val_split} images, "
            f"{data.num_classes} classes"
        )
        rows = manifest_rows(data.root, data.class_names, "train", data.train_files, data.y_train, data.train_hashes)
        rows += manifest_rows(data.root, data.class_names, data.val_split, data.val_files, data.y_val, data.val_hashes)
        self.record(config, rows, getattr(data, "shared_images", 0))
        return self.restore(model)

    def record(self, config: TrainConfig, rows, shared_images=0) -> None:
        """Write config.json (``config``, the data's fingerprint, the backend) and the manifest's
        ``rows``, or, on a resume, refuse images that differ from those the run started with.
        ``shared_images``: val images that are train images, accepted by allow_shared_images."""
        fingerprint = rows_fingerprint(rows)
        if self.resuming and self.manifest_file.is_file():
            stored = self.stored_fingerprint()
            if stored != fingerprint:
                old = self.manifest()
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
        record = {**json.loads(config.to_json()), "data_fingerprint": fingerprint, "backend": keras.backend.backend()}
        if shared_images:
            record["shared_images"] = shared_images
        fsutil.write_text_atomically(self.config_file, json.dumps(record, indent=2, sort_keys=True))
        write_manifest(self.manifest_file, rows)

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
            else:  # a background run's log shows where each part began
                self.say(f"{shown(self.path)}: resuming from its backup after epoch {epoch}")
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
            keras.callbacks.CSVLogger(self.history_file, append=resuming),
            _FiniteCheckpoint(self, self.best_file, monitor="val_accuracy", save_best_only=True),
        ]
        if _tensorboard_available():
            callbacks.append(keras.callbacks.TensorBoard(self.path / "logs"))
        return callbacks + [_EpochBackup(self)]

    def require_space(self, model, file: Path, what: str) -> None:
        """Stop with ``DiskFull`` when the disk lacks room for saving ``what`` (``file``) of ``model``:
        the size of its last save (``file`` itself or, the first time, the same model's other
        saves), or the model's weights and optimizer state where nothing was saved yet."""
        previous = [p for p in (file, self.backup / _BACKUPS[0][0], self.best_file) if p.is_file()]
        estimate = previous[0].stat().st_size if previous else variables_bytes(model)
        needed = int(estimate * 1.1) + (1 << 20)  # HDF5's and the zip's own structures beside the arrays
        probe = Path(file).parent
        while not probe.exists():
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if free < needed:
            raise DiskFull(
                f"{shown(self.path)}: out of disk space, {_megabytes(free)} free where {what} needs about "
                f"{_megabytes(needed)}, so the run stopped before writing it; {self.saved()}: "
                f"free some space and run the same command again to resume"
            )

    def drop_backup(self) -> None:
        if self.writer:
            shutil.rmtree(self.backup, ignore_errors=True)


_BACKUPS = (("latest.weights.h5", "training_metadata.json"), ("previous.weights.h5", "previous_metadata.json"))


def variables_bytes(model) -> int:
    """Bytes of ``model``'s variables and its optimizer's: what a save of it holds, near enough."""
    variables = [*model.variables, *(model.optimizer.variables if model.optimizer is not None else [])]
    total = 0
    for v in variables:
        try:
            itemsize = np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        except TypeError:  # bfloat16 and the like, which numpy does not name
            itemsize = 2
        total += int(np.prod(v.shape)) * itemsize
    return total


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


class _EpochBackup(keras.callbacks.Callback):
    """After each epoch: the weights and optimizer state, written under a temporary name and
    renamed into place, with the epoch before's kept as ``previous``, so that a file cut short
    by a kill, a full disk or a crash never leaves a run that cannot resume. The free space is
    checked first: HDF5 can crash the process when the disk fills during a write."""

    def __init__(self, run: RunFolder):
        super().__init__()
        self.run = run
        self.backup_dir = run.backup

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)):
            return  # a diverged epoch is never a point to resume from
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        (latest, latest_meta), (previous, previous_meta) = _BACKUPS
        self.run.require_space(self.model, self.backup_dir / latest, f"epoch {epoch + 1}'s backup")
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
    must not leave a best.keras that looks usable (its accuracy can look best by chance), nor
    starts a save the disk has no room for."""

    def __init__(self, run: RunFolder, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run

    def on_epoch_end(self, epoch, logs=None):
        if np.isfinite((logs or {}).get("loss", 0.0)):
            self.run.require_space(self.model, Path(self.filepath), "best.keras")
            with distribute.outside_distribution():
                super().on_epoch_end(epoch, logs)


def _tensorboard_available() -> bool:
    """Keras' TensorBoard callback writes through TensorFlow's summary API, whatever the backend."""
    from .hardware import import_tensorflow_quietly

    return import_tensorflow_quietly() is not None


# --- the manifest and the data's fingerprint -------------------------------------------------------


def manifest_rows(root, class_names, split, files, labels, hashes) -> list[dict]:
    """The manifest's rows of one split's images (``MANIFEST_COLUMNS``): ``hashes`` holds each
    file's ``(size, sha256)`` (``data_prep.images.file_hashes``, as the decode cache keys them);
    a label of -1 (none) leaves its wnid and words empty."""
    words = class_descriptions(root, class_names)
    return [
        {
            "file": os.path.relpath(file, root),
            "wnid": class_names[label] if label >= 0 else "",
            "class_index": int(label),
            "words": words[label] if label >= 0 else "",
            "split": split,
            "size": size,
            "sha256": digest,
        }
        for file, label, (size, digest) in zip(files, labels, hashes)
    ]


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


def read_history(path):
    """A history.csv, one row per epoch (a resumed run may have written an epoch twice: keep the last)."""
    import pandas as pd

    history = pd.read_csv(path)
    return history.drop_duplicates("epoch", keep="last").reset_index(drop=True)


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


def load_saved_model(path):
    """``keras.models.load_model``, with an error naming the file when it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {path.parent} a finished run folder?")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # noqa: BLE001 (a cut zip shows as "File not found", KeyError or BadZipFile)
        if "safe_mode" in str(err):  # Keras' safe mode refused to run the Python code it holds
            raise ValueError(
                f"{path} holds code (e.g. a Lambda layer's Python function), refused for safety; load it "
                f"yourself with keras.models.load_model(path, safe_mode=False) only if you trust it"
            ) from None
        raise ValueError(
            f"{path} is corrupt or not a Keras model ({type(err).__name__}); train the run again or restore the file"
        ) from None
