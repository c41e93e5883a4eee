"""Download, check and reorganise Tiny ImageNet: ``python -m data_prep <step> --help``."""

from .download import OFFICIAL_URL, HashMismatchError, download
from .extract import check, extract, summary_table
from .reorganise import flatten_train, reorganise_val
from .subset import counts_table, make_folds, make_subset, plan_subset
from .synthetic import make_synthetic

__all__ = [
    "OFFICIAL_URL",
    "HashMismatchError",
    "check",
    "counts_table",
    "dataset_root",
    "download",
    "extract",
    "flatten_train",
    "make_folds",
    "make_subset",
    "make_synthetic",
    "plan_subset",
    "reorganise_val",
    "summary_table",
]


def dataset_root(data_dir="data", quick=False, source=OFFICIAL_URL, sha256=None):
    """The dataset a notebook or script works on, prepared once: the synthetic set when ``quick``,
    else Tiny ImageNet (``data_dir/tiny-imagenet-200.zip`` is used if present, downloaded if not,
    and extracted once)."""
    from pathlib import Path

    if quick:
        return make_synthetic(data_dir)
    root = Path(data_dir) / "tiny-imagenet-200"
    if root.is_dir():
        return root
    local = Path(data_dir) / "tiny-imagenet-200.zip"
    return extract(local if local.is_file() else download(source, data_dir, sha256), data_dir)
