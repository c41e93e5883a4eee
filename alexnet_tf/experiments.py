"""Experiments over many runs: grid search, K-fold cross-validation, the LRN ablation, and
transfer learning between disjoint sets of classes. Each run is an ordinary run folder, so a
finished run is loaded rather than trained again and an interrupted sweep continues."""

from __future__ import annotations

import itertools

import pandas as pd

from .config import TrainConfig
from .run_folder import RunFolder
from .training import train

METRICS = ["top1_accuracy", "top5_accuracy", "fit_seconds", "epochs"]


def _row(config: TrainConfig, result, **extra) -> dict:
    return {**extra, **{k: result.metrics[k] for k in METRICS}, "run": config.run_name}


def grid_search(base: TrainConfig, grid: dict, name=None, verbose=0) -> pd.DataFrame:
    """Train every combination of ``grid`` (field -> values) on top of ``base``; one row per run.
    Run folders are named ``<base run name>[-<name>]-grid-<field>=<value>...``."""
    names = sorted(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        changes = dict(zip(names, values))
        label = "-".join(f"{n}={v}" for n, v in changes.items())
        config = base.replace(**changes, name=f"{base.run_name}{'-' + name if name else ''}-grid-{label}")
        rows.append(_row(config, train(config, verbose=verbose), **changes))
    return pd.DataFrame(rows).sort_values("top1_accuracy", ascending=False, ignore_index=True)


def cross_validate(base: TrainConfig, fold_dirs, verbose=0) -> pd.DataFrame:
    """Train ``base`` on each fold folder (from ``data_prep.make_folds``); one row per fold."""
    rows = []
    for i, folder in enumerate(fold_dirs):
        config = base.replace(data=str(folder), name=f"{base.run_name}-fold{i}")
        rows.append(_row(config, train(config, verbose=verbose), fold=i))
    return pd.DataFrame(rows)


def lrn_ablation(base: TrainConfig, seeds=(0, 1, 2), verbose=0):
    """The same network with and without LRN over several seeds: (runs, mean and std per setting)."""
    rows = []
    for lrn, seed in itertools.product((True, False), seeds):
        config = base.replace(lrn=lrn, seed=seed, name=f"{base.run_name}-lrn{int(lrn)}-seed{seed}")
        rows.append(_row(config, train(config, verbose=verbose), lrn=lrn, seed=seed))
    runs = pd.DataFrame(rows)
    summary = runs.groupby("lrn")[["top1_accuracy", "top5_accuracy"]].agg(["mean", "std"])
    return runs, summary


def transfer(pretrain: TrainConfig, target: TrainConfig, head_epochs=None, verbose=0) -> pd.DataFrame:
    """Pretrain on ``pretrain``'s classes, then on ``target``'s: first the dense layers only on frozen
    features, then the whole network with a tenth of the learning rate (one-cycle both times),
    against ``target`` trained from scratch. One row per stage."""
    base = train(pretrain, verbose=verbose)
    head = target.replace(
        init_weights=str(RunFolder.at(base.run_dir).model_file),
        freeze_features=True,
        schedule="onecycle",
        epochs=head_epochs or max(1, target.epochs // 3),
        name=f"{target.run_name}-transfer-head",
    )
    head_result = train(head, verbose=verbose)
    full = target.replace(
        init_weights=str(RunFolder.at(head_result.run_dir).model_file),
        freeze_features=False,
        schedule="onecycle",
        learning_rate=target.learning_rate / 10,
        name=f"{target.run_name}-transfer-full",
    )
    scratch = target.replace(name=f"{target.run_name}-scratch")
    rows = [
        _row(pretrain, base, stage="pretrain (other classes)"),
        _row(head, head_result, stage="fine-tune: frozen features"),
        _row(full, train(full, verbose=verbose), stage="fine-tune: whole network"),
        _row(scratch, train(scratch, verbose=verbose), stage="target classes from scratch"),
    ]
    return pd.DataFrame(rows)
