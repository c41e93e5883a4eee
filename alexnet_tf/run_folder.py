"""A run folder, ``runs/<name>/``: one run, one dataset, one split, one writer.

    config.json       the settings that ran (absolute paths, the precision and XLA chosen) and
                      ``data_fingerprint``, a hash of every image the run uses
    manifest.csv      those images: file, wnid, class index, words, split, size, sha256
    history.csv       one row an epoch; logs/ for TensorBoard
    backup/           while the run is unfinished: the last epoch's weights and optimizer state
                      (latest.weights.h5, training_metadata.json) and the epoch before's
                      (previous.weights.h5, previous_metadata.json), to fall back on
    best.keras, model.keras, metrics.json, per_class_<split>.csv, figures/
    models.json       what identifies each model file the run wrote: its sha256, class count and
                      input shape, checked before the file is used (``open_finished``)
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
  backup kept, so that the same command resumes once there is space;
- one model: ``open_finished`` checks the model file against the run's record (``models.json``)
  before it is used, and refuses another model in one line, with nothing rewritten.
Every file is written through ``data_prep.fsutil``.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
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
# config.json's "run_format": 2 for runs that record their models in models.json (older runs have
# no such key, and are checked against config.json and the manifest instead).
RUN_FORMAT = 2


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
    def models_file(self) -> Path:
        return self.path / "models.json"

    @property
    def data_work_dir(self) -> Path:
        """Where data for this run is extracted or generated: ``data/`` beside the runs folder that
        holds the run folder now (as training puts it beside ``--runs-dir``), never a place read
        from the run's records."""
        return Path(os.path.abspath(self.path)).parent.parent / "data"

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

    def classes(self, manifest: list[dict] | None = None) -> list[tuple[str, str]]:
        """``(wnid, words)`` of each class, in the order of the model's outputs, from ``manifest``'s
        rows (default: manifest.csv's); unlabelled images (class index -1) name no class."""
        rows = self.manifest() if manifest is None else manifest
        by_index = {int(r["class_index"]): (r["wnid"], r["words"]) for r in rows if int(r["class_index"]) >= 0}
        return [by_index[i] for i in sorted(by_index)]

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
        fsutil.make_folder(self.path)
        fsutil.write_text_atomically(self.metrics_file, json.dumps(metrics, indent=2))

    def save_model(self, model) -> None:
        """The final model.keras, once the disk has room for it."""
        self.require_space(model, self.model_file, "the final model.keras")
        fsutil.save_model(model, self.model_file)

    def record_models(self, model) -> None:
        """models.json: what identifies each model file the run wrote (``model_record``), so that
        any other file put in its place is refused before it is used."""
        records = {f.name: model_record(f, model) for f in (self.model_file, self.best_file) if f.is_file()}
        fsutil.write_text_atomically(self.models_file, json.dumps(records, indent=2))

    # --- a finished run, opened for use ---------------------------------------------------------

    @classmethod
    def open_finished(cls, path, lock: str | None = None) -> FinishedRun:
        """The finished run at ``path``, opened once for evaluate, predict, the notebooks and
        Grad-CAM: refused while in training or unfinished, or where it lacks its files; with
        ``lock`` (what a second process should do instead), locked for this process, which then
        writes its results there (the FinishedRun unlocks it as a context manager); its config
        read, its manifest read once (its class names with it), and its model checked against the
        run's record (``checked_model``) before it is used."""
        run = cls.at(path)
        run.require_finished()
        run.require_files()
        if lock is not None:
            try:
                run.lock(way_out=lock)
            except PermissionError as err:
                raise PermissionError(
                    f"cannot write to the run folder {run.path} ({err}), where this command writes its results: "
                    f"copy the folder somewhere writable and run it on the copy"
                ) from None
        try:
            config = run.config()
            manifest = run.manifest()
            classes = run.classes(manifest)
            return FinishedRun(run, config, run.checked_model(config, len(classes)), classes, manifest)
        except BaseException:
            run.unlock()
            raise

    def checked_model(self, config: TrainConfig, num_classes: int):
        """model.keras loaded, once it is the file the run's record names: its sha256, class count
        and input shape, from models.json; a run made before models.json is checked by class count
        (its manifest) and input shape (its config). A mismatch is refused in one line naming the
        file, before anything is written."""
        file = self.model_file
        expected = {"classes": num_classes, "input_shape": [config.image_size, config.image_size, 3]}
        record = None
        if self.models_file.is_file():
            records = json.loads(self.models_file.read_text())
            record = records.get(file.name)
            if record is None:
                raise ValueError(f"{file}: {self.models_file} has no record of it; use the run's own model files")
            if fsutil.file_sha256(file) != record["sha256"]:
                load_saved_model(file)  # a file cut short, or one holding code, is named as such
                raise ValueError(
                    f"{file} is not the model this run saved (its sha256 differs from {self.models_file.name}'s "
                    f"record): restore the run's own file, or train the run again; nothing was written"
                )
        elif self._recorded_format() >= RUN_FORMAT:
            raise ValueError(f"{self.path} has no {self.models_file.name}, which this run wrote: restore it")
        model = load_saved_model(file)
        found = {"classes": int(model.output_shape[-1]), "input_shape": [int(d) for d in model.input_shape[1:]]}
        for what, wanted in ({**expected, **(record or {})}).items():
            if what in found and found[what] != wanted:
                raise ValueError(
                    f"{file} has {what.replace('_', ' ')} {found[what]}, but the run {self.path} has {wanted} "
                    f"(its {'models.json' if record else 'config.json and manifest.csv'}): it is another model; "
                    f"restore the run's own file; nothing was written"
                )
        return model

    def _recorded_format(self) -> int:
        try:
            return int(json.loads(self.config_file.read_text()).get("run_format", 1))
        except (OSError, ValueError, TypeError, AttributeError):
            return 1

    def require_finished(self) -> None:
        """Refuse a run folder whose training is under way or stopped before its end, saying so (its
        final model is missing, or not yet the final one, while the backup exists)."""
        holder = self.holder()
        if not self.resuming and (holder is None or self.model_file.is_file()):
            return
        try:
            epochs = f" of {self.config().epochs}"
        except (OSError, ValueError, AttributeError):  # AttributeError: no config.json
            epochs = ""
        epoch = self.backup_epoch()
        progress = f"epoch {epoch}{epochs} done" if epoch is not None else "no epoch done yet"
        if holder is not None:
            raise RunFolderInUse(
                f"{self.path} is still in training ({progress}; process {holder} is training it), so there is no "
                f"final model to use yet: wait for the training to end, then run this again"
            )
        raise RunFolderInUse(
            f"{self.path} is a run in training that stopped before its end ({progress}, no final model yet): run "
            f"its train command again to finish it, then run this again"
        )

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
        fsutil.make_folder(path.parent)
        while True:
            handle = fsutil.open_lock_file(path)
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
        # What a killed writer left half-written (a model's or a backup's temporary file), now that no one writes.
        fsutil.remove_stale_temps(self.path)
        fsutil.remove_stale_temps(self.backup)
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
            fsutil.remove_file(self._lock_path)  # while still held, so no one locks a file on its way out
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
        fsutil.make_folder(self.path)
        record = {
            **json.loads(config.to_json()),
            "data_fingerprint": fingerprint,
            "backend": keras.backend.backend(),
            "run_format": RUN_FORMAT,
        }
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
            self._drop_history_after(epoch)
            return epoch
        if failures:
            raise ValueError(
                f"no backup of {self.path} loads: {'; '.join(failures)}. Delete {self.backup} to train "
                f"this run again from epoch 1, or pass --name NEW_NAME for a new run"
            )
        return 0

    def _drop_history_after(self, epoch: int) -> None:
        """history.csv keeps the rows of the ``epoch`` epochs the backup holds, each once: the rows
        written after it (an epoch whose backup was not written, a full disk) are redone now."""
        if not self.writer or not self.history_file.is_file():
            return
        with open(self.history_file, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or "epoch" not in rows[0]:
            return
        column = rows[0].index("epoch")
        last = {int(float(r[column])): r for r in rows[1:] if r}  # an epoch written twice by older code: the last
        kept = [last[e] for e in sorted(last) if e < epoch]  # Keras counts epochs from 0
        if kept != rows[1:]:
            fsutil.write_rows(self.history_file, rows[0], kept)

    def callbacks(self, resuming: bool) -> list:
        """What writes the folder during fit, in order: the CSV row of an epoch is written before
        the backup that marks the epoch done. Empty for processes that do not write."""
        if not self.writer:
            return []
        callbacks = [fsutil.csv_log(self.history_file, append=resuming), _BestModel(self, resuming)]
        if _tensorboard_available():
            callbacks.append(fsutil.tensorboard_log(self.path / "logs"))
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
            fsutil.remove_tree(self.backup)


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
        fsutil.make_folder(self.backup_dir)
        (latest, latest_meta), (previous, previous_meta) = _BACKUPS
        self.run.require_space(self.model, self.backup_dir / latest, f"epoch {epoch + 1}'s backup")
        # Both files of the epoch complete under temporary names first, then renamed into place.
        staged = self.backup_dir / fsutil.temp_name("staged", ".weights.h5")
        staged_meta = self.backup_dir / fsutil.temp_name("staged", ".json")
        try:
            with distribute.outside_distribution():
                fsutil.save_weights(self.model, staged)
            fsutil.write_text_atomically(staged_meta, json.dumps({"epoch": epoch + 1, "batch": 0}))
            if (self.backup_dir / latest).is_file() and (self.backup_dir / latest_meta).is_file():
                fsutil.replace_file(self.backup_dir / latest, self.backup_dir / previous)
                fsutil.replace_file(self.backup_dir / latest_meta, self.backup_dir / previous_meta)
            fsutil.replace_file(staged, self.backup_dir / latest)
            fsutil.replace_file(staged_meta, self.backup_dir / latest_meta)
        finally:
            fsutil.remove_file(staged)
            fsutil.remove_file(staged_meta)


class _BestModel(keras.callbacks.Callback):
    """best.keras: the model of the epoch with the best val accuracy so far (a resumed run starts
    from the best of its history), never of an epoch whose loss is NaN or infinite (a diverged
    run must not leave a best.keras that looks usable), and never a save the disk has no room for."""

    def __init__(self, run: RunFolder, resuming: bool):
        super().__init__()
        self.run = run
        # A resumed run's best so far, if its best.keras is there to beat.
        history = run.history() if resuming and run.best_file.is_file() else None
        found = history["val_accuracy"].max() if history is not None and "val_accuracy" in history else None
        self.best = float(found) if found is not None and np.isfinite(found) else -np.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        score = logs.get("val_accuracy")
        if not np.isfinite(logs.get("loss", 0.0)) or score is None or not score > self.best:
            return
        self.run.require_space(self.model, self.run.best_file, "best.keras")
        with distribute.outside_distribution():
            fsutil.save_model(self.model, self.run.best_file)
        self.best = float(score)


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
    fsutil.write_rows(path, MANIFEST_COLUMNS, ([r[c] for c in MANIFEST_COLUMNS] for r in rows))


def model_record(path, model) -> dict:
    """What identifies a saved model file: its sha256, class count and input shape (models.json's
    entries, and the shipped network's record)."""
    return {
        "sha256": fsutil.file_sha256(path),
        "classes": int(model.output_shape[-1]),
        "input_shape": [int(d) for d in model.input_shape[1:]],
    }


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


@dataclass
class FinishedRun:
    """A finished run opened once (``RunFolder.open_finished``): its folder, config, checked model,
    classes (``(wnid, words)`` in the order of the model's outputs) and manifest rows. As a
    context manager it releases the folder's lock, if it holds one."""

    folder: RunFolder
    config: TrainConfig
    model: object
    classes: list
    manifest: list

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def class_names(self) -> list[str]:
        return [wnid for wnid, _ in self.classes]

    @property
    def words(self) -> list[str]:
        return [words for _, words in self.classes]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.folder.unlock()
