"""Download, check and reorganise Tiny ImageNet: ``python -m data_prep <step> --help``."""

from .download import OFFICIAL_URL, HashMismatchError, download
from .extract import check, extract, summary_table
from .reorganise import flatten_train, reorganise_val
from .subset import counts_table, make_subset, plan_subset
from .synthetic import make_synthetic

__all__ = ["OFFICIAL_URL", "HashMismatchError", "download", "extract", "check", "summary_table",
           "reorganise_val", "flatten_train", "make_subset", "plan_subset", "counts_table", "make_synthetic"]
