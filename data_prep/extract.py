"""Unzip Tiny ImageNet and check its layout."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from alexnet_tf import tiny_imagenet

from .fsutil import check_writable


def extract(zip_path, out_dir="data") -> Path:
    """Extract ``zip_path`` into ``out_dir`` and return the dataset root (e.g. data/tiny-imagenet-200).

    Extraction goes to a temporary folder that is renamed when complete; an existing
    extracted folder is reused, so re-running is safe.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path} does not exist; run 'python -m data_prep download' first")
    check_writable(out_dir)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            top = {n.split("/", 1)[0] for n in names if "/" in n}
            if len(top) != 1:
                raise tiny_imagenet.DataFormatError(
                    f"{zip_path} should hold one top folder (tiny-imagenet-200/), found {sorted(top)[:5]}")
            root = out_dir / top.pop()
            if root.is_dir():
                return root
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-extract-", dir=out_dir))
            try:
                archive.extractall(tmp)
                (tmp / root.name).rename(root)  # the folder appears only once complete
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, EOFError) as err:
        raise tiny_imagenet.DataFormatError(
            f"{zip_path} is not a complete zip file ({err}); download it again") from None
    return root


def summary_table(summary) -> str:
    rows = ["split  classes  images  min/class  max/class"]
    for split, s in summary.items():
        rows.append(f"{split:<6} {s['classes']:>7} {s['images']:>7} {s['min_per_class']:>10} {s['max_per_class']:>10}")
    return "\n".join(rows)


def check(root) -> dict:
    """Check the layout of an extracted folder (raises DataFormatError naming the bad file)."""
    return tiny_imagenet.check_layout(root)
