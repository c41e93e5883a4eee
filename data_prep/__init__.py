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
    "prepare_dataset",
    "reorganise_val",
    "summary_table",
]


def prepare_dataset(data=None, work_dir="data"):
    """The dataset root for ``data``: a folder as it is, a Tiny ImageNet zip extracted once (into
    a folder keyed on that zip, see ``extract``), or None for the synthetic set (generated once)."""
    from pathlib import Path

    if data is None:
        return make_synthetic(work_dir)
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"{data} does not exist: give a Tiny ImageNet folder or zip")
    return extract(data, work_dir) if data.suffix == ".zip" else data


def dataset_root(data_dir="data", quick=False, source=OFFICIAL_URL, sha256=None):
    """The dataset a notebook or script works on, prepared once: the synthetic set when ``quick``,
    else Tiny ImageNet from ``data_dir/tiny-imagenet-200.zip`` (downloaded first if absent; a
    folder extracted by hand at ``data_dir/tiny-imagenet-200`` without the zip is used as it is)."""
    from pathlib import Path

    if quick:
        return prepare_dataset(None, data_dir)
    local = Path(data_dir) / "tiny-imagenet-200.zip"
    if not local.is_file() and (Path(data_dir) / "tiny-imagenet-200").is_dir():
        return Path(data_dir) / "tiny-imagenet-200"
    return prepare_dataset(local if local.is_file() else download(source, data_dir, sha256), data_dir)
