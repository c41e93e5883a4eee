"""Saved runs: a finished run folder loaded, evaluated again (on any split or other data), used
to predict image files, and shipped as a network (``ship``), as ``sample.py`` stands beside
``train.py``. ``alexnet_tf.training`` trains; this module never trains, and reads its folders
through ``alexnet_tf.run_folder``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from data_prep import fsutil, prepare_dataset, tiny_imagenet
from data_prep.images import PHOTO_MAX_PIXELS

from .config import TrainConfig, plain_name_problem
from .data import class_descriptions, decode_image, file_hashes, load_images, require_every_class
from .evaluate import confused_pairs, evaluate_predictions, predict, prediction_table, topk_metrics
from .plots import evaluation_figures
from .run_folder import (
    RunFolder,
    compare_manifests,
    describe_changes,
    manifest_rows,
    model_record,
    read_history,
)
from .shipped import Pretrained, network, weights_arrays

# The formats ``evaluate --export`` writes (Keras' native zip, and the legacy HDF5).
EXPORT_SUFFIXES = (".keras", ".h5", ".hdf5")

__all__ = [
    "RunResult",
    "evaluate_run",
    "evaluate_saved",
    "finished_run",
    "load_run",
    "predict_files",
    "read_history",
    "score_network",
    "ship",
]


@dataclass
class RunResult:
    run_dir: Path
    model: keras.Model
    history: pd.DataFrame
    metrics: dict
    report: pd.DataFrame | None  # None in the processes that do not write (data-parallel)


def finished_run(config: TrainConfig) -> RunResult | None:
    """The finished run of ``config`` (what ``train`` would load instead of training), or None."""
    run = RunFolder(config)
    return load_run(run.path) if run.finished else None


def load_run(run_dir) -> RunResult:
    """A finished run folder as a RunResult (final model, checked against the run's record;
    history, metrics, per-class report)."""
    run = RunFolder.open_finished(run_dir)
    metrics = run.folder.metrics()
    return RunResult(
        run.path, run.model, run.folder.history(), metrics, run.folder.per_class(metrics.get("split", "val"))
    )


def evaluate_run(model, out: RunFolder, root, class_names, images, labels, tta=False, history=None, split="val"):
    """Metrics, per-class report and every figure of an evaluation into ``out`` (the run folder, or
    a separate evaluation's)."""
    fsutil.make_folder(out.path)
    probs = predict(model, images, tta=tta)
    names = class_descriptions(root, class_names)
    metrics, report, confusion = evaluate_predictions(labels, probs, class_names, names)
    pairs = confused_pairs(confusion, names)
    metrics["split"] = split
    fsutil.write_csv(out.per_class_file(split), report, index=False)
    # The counts behind the confusion figure, readable and comparable without the model.
    confusion_table = pd.DataFrame(confusion, index=pd.Index(class_names, name="true"), columns=class_names)
    fsutil.write_csv(out.confusion_file(split), confusion_table)
    evaluation_figures(out.figures, model, history, report, confusion, pairs, names, images, labels, probs, split)
    return metrics, report


def evaluate_saved(run_dir, split="val", data=None, export=None, tta=None, name=None) -> dict:
    """Re-evaluate a saved run on any split; ``export`` also writes the legacy HDF5 format.

    The run's own files (``per_class_<split>.csv``, figures) are written only when the split's
    images are the ones its manifest lists (or a split it never used, such as test); other data
    is refused unless ``name`` asks for a separate evaluation, written to ``evaluations/<name>/``.
    A split without labels (Tiny ImageNet's test images) cannot be scored: its predictions go to
    ``predictions_<split>.csv`` instead (see ``prediction_table``)."""
    if export is not None:
        _require_export_path(export)  # before anything is evaluated or written
    name = None if name is None else _evaluation_name(name)
    # The run's own files: the run folder's lock, taken before predicting. A separate evaluation
    # writes only its own folder, under a lock of its own, so it may run beside another evaluation.
    if name is None:
        way_out = (
            f"pass --as NAME for a separate evaluation, written to {RunFolder.at(run_dir).evaluation('NAME').path}"
        )
        run = RunFolder.open_finished(run_dir, lock=way_out)
        out = run.folder
    else:
        run = RunFolder.open_finished(run_dir)
        out = run.folder.evaluation(name)
        try:
            out.lock(way_out="pass another --as NAME")
        except PermissionError as err:
            raise PermissionError(
                f"cannot write to {out.path} ({err}): copy the run folder somewhere writable"
            ) from None
    with run, out:
        config, model, class_names = run.config, run.model, run.class_names
        # Data named by a path that the run recorded is only read; what is extracted or generated
        # goes beside the runs folder that holds the run now.
        root = prepare_dataset(data if data is not None else config.data, run.folder.data_work_dir)
        files, labels = _split_images(root, split, class_names)
        recorded = [r for r in run.manifest if r["split"] == split]
        if name is None and (recorded or data is not None):
            _require_run_images(run.folder, recorded, root, files, labels, class_names, split)
        images = load_images(files, config.image_size)
        tta = config.tta if tta is None else tta
        if np.all(labels < 0):
            metrics = _write_predictions(out, model, root, files, images, class_names, split, tta)
        else:
            history = run.folder.history() if name is None else None
            metrics, _ = evaluate_run(model, out, root, class_names, images, labels, tta, history, split)
            if name is not None:
                metrics.update(data=str(Path(root).resolve()), images=len(files))
                out.write_metrics(metrics)
        if export is not None:
            fsutil.save_model(model, export, new=True, way_out=EXPORT_WAY_OUT)  # .h5: the legacy HDF5 format
    return metrics


EXPORT_WAY_OUT = "give --export a new file name, or move that file away first"


def _require_export_path(export) -> None:
    """``evaluate --export``'s path: a new file, of a format Keras writes, in a folder that exists."""
    export = Path(export)
    if export.suffix not in EXPORT_SUFFIXES:  # Keras reads the format from the suffix, case and all
        raise ValueError(f"--export {export}: give a path ending in {', '.join(EXPORT_SUFFIXES)}")
    fsutil.refuse_existing(export, EXPORT_WAY_OUT)
    if not export.parent.is_dir():
        raise FileNotFoundError(f"--export {export}: the folder {export.parent} does not exist; create it first")


def _split_images(root, split, class_names) -> tuple[list, np.ndarray]:
    """The files and labels of ``split`` among the run's own classes, so that a folder holding only
    this split (e.g. test images to label) is enough; labels are -1 where the split has none."""
    files, labels = tiny_imagenet.split_files(root, split, class_names)
    if not files:
        raise tiny_imagenet.DataFormatError(f"{Path(root) / split} has no images of the run's classes")
    labels = np.asarray(labels, dtype=np.int32)
    if labels[0] >= 0:
        require_every_class(labels, class_names, Path(root) / split)
    return files, labels


def _write_predictions(out: RunFolder, model, root, files, images, class_names, split, tta) -> dict:
    """An unlabelled split's predictions into ``predictions_<split>.csv``; what evaluate reports of it."""
    table = prediction_table(
        [os.path.relpath(f, root) for f in files],
        predict(model, images, tta=tta),
        class_names,
        class_descriptions(root, class_names),
    )
    fsutil.make_folder(out.path)
    path = out.predictions_file(split)
    fsutil.write_csv(path, table, index=False)
    print(f"{split}: {len(files)} images without labels, so no score; their predictions: {path}")
    return {"split": split, "images": len(files), "predictions": str(path)}


def _evaluation_name(name: str) -> str:
    if plain_name_problem(name) is not None or name.startswith("."):
        raise ValueError(f"--as {name!r}: give a plain name for the evaluation's folder, e.g. --as other-val")
    return name


def _unreadable(path, err) -> str:
    """One line for an image file ``predict`` cannot use, with advice for ``predict``."""
    path = Path(path)
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path} is a folder: give the image files in it (e.g. {path / '*.jpg'})"
    cause = err.__context__ if err.__context__ is not None else err
    reason = str(cause).replace(f"cannot decode image {path}: ", "").split(". ")[0].rstrip(".")
    return f"{path}: cannot read it as an image ({reason}); give a JPEG, PNG or other image file"


def _require_run_images(run: RunFolder, recorded, root, files, labels, class_names, split) -> None:
    """Refuse to write the run's own results for images other than the run's (by content)."""
    if not recorded:  # a split the run never used, on other data: nothing to compare against
        return
    current = manifest_rows(root, class_names, split, files, labels, file_hashes(files))
    counts = compare_manifests(recorded, current, by_content="sha256" in recorded[0])
    if any(counts.values()):
        raise ValueError(
            f"these {split} images are not the run's ({describe_changes(counts)} against "
            f"{run.manifest_file}), so nothing was written. To evaluate them as a separate "
            f"evaluation, add --as NAME (written to {run.evaluation('NAME').path})"
        )


def predict_files(source, files, k=5, failed=None) -> pd.DataFrame:
    """The top-``k`` classes of each image file by a finished run's model (``source``: its folder)
    or a shipped network (a ``Pretrained``): any size or colour mode, resized as training resized
    its images; one row per file (see ``prediction_table``), with ``top{k}_probability`` beside
    ``top{k}``. Files that are missing or do not decode are named: with ``failed`` (a list) each is
    appended to it as one line and the others are predicted; without it, one ValueError names them all."""
    run = source if isinstance(source, Pretrained) else RunFolder.open_finished(source)
    config, model, class_names, words = run.config, run.model, run.class_names, run.words
    decoded = _decode_files(files, config.image_size, failed)
    if not decoded:
        return pd.DataFrame()
    files = [f for f, _ in decoded]
    images = np.stack([image for _, image in decoded])
    probs = predict(model, images, tta=config.tta)
    k = min(k, len(class_names))
    table = prediction_table([str(f) for f in files], probs, class_names, words, k=k)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    table[f"top{k}_probability"] = [" ".join(f"{p:.4f}" for p in row[c]) for row, c in zip(probs, top)]
    table[f"top{k}_names"] = ["|".join(words[i] for i in c) for c in top]
    return table


def score_network(network: Pretrained, data, split="val") -> dict:
    """Top-1 and top-5 accuracy and error of a shipped network on ``split`` of the dataset folder
    ``data``, with the flip averaging its config records, and the number of images scored."""
    files, labels = _split_images(data, split, network.class_names)
    if np.any(labels < 0):
        raise ValueError(f"{Path(data) / split} has no labels to score against")
    probs = predict(network.model, load_images(files, network.config.image_size), tta=network.config.tta)
    return {**topk_metrics(labels, probs), "images": len(files)}


# The scores a shipped network's record holds, the run's and the shipped file's own.
SHIPPED_SCORES = ("top1_accuracy", "top5_accuracy", "images")


def ship(run_dir, name: str, data, out, command: str, split: str = "val") -> dict:
    """Ship the finished run at ``run_dir`` as network ``name``: its weights as float16
    (``<name>.weights.npz``) and its record (``<name>.json``, the fields ``alexnet_tf.shipped``
    reads) written into the existing folder ``out``, where neither may exist yet; the shipped file
    is then scored on ``split`` of the dataset folder ``data`` with the run's flip averaging, and
    the record, holding the run's score and the shipped file's own, is returned."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: the folder to ship into does not exist; create it first")
    run = RunFolder.open_finished(run_dir)
    weights = out / f"{name}.weights.npz"
    fsutil.refuse_existing(out / f"{name}.json", "choose another name, or move that file away first")
    fsutil.save_arrays(weights, weights_arrays(run.model), new=True)
    normalize = run.model.get_layer("normalize").get_config()
    metrics = run.folder.metrics()
    record = {
        "name": name,
        "file": weights.name,
        **model_record(weights, run.model),  # what models.json holds of a run's model file
        "bytes": weights.stat().st_size,
        "dtype": "float16",
        "class_names": [list(c) for c in run.classes],
        "mean": [float(v) for v in normalize["mean"]],
        "variance": [float(v) for v in normalize["variance"]],
        "config": asdict(run.config),
        "trained_on": f"Tiny ImageNet's train split: {metrics.get('train_images')} images of {len(run.classes)} classes",
        "command": command,
        "run": run.path.name,
        "code": metrics.get("code"),
        "run_scores": {"split": metrics.get("split", "val"), **{k: metrics.get(k) for k in SHIPPED_SCORES}},
    }
    scores = score_network(network(name, record, weights), data, split)
    record["shipped_scores"] = {"split": split, **{k: scores[k] for k in SHIPPED_SCORES}}
    fsutil.write_text_atomically(out / f"{name}.json", json.dumps(record, indent=1) + "\n", new=True)
    return record


def _decode_files(files, image_size, failed=None) -> list:
    """``(file, image)`` of each file that decodes; the others named in ``failed`` (a list), or, without
    it, in one ValueError."""
    decoded, problems = [], []
    for f in files:
        try:
            decoded.append((f, decode_image(f, image_size, max_pixels=PHOTO_MAX_PIXELS)))
        except (tiny_imagenet.DataFormatError, OSError) as err:
            problems.append(_unreadable(f, err))
    if problems and failed is None:
        raise ValueError("; ".join(problems))
    if failed is not None:
        failed.extend(problems)
    return decoded
