"""Fetch the official Tiny ImageNet zip (or take a local copy), checking what arrived."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from .extract import check_zip
from .fsutil import check_writable, file_sha256, remove_stale_temps, temp_name
from .tiny_imagenet import DataFormatError

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"

log = logging.getLogger(__name__)


class HashMismatchError(ValueError):
    pass


def _verify(path: Path, expected_sha256, source) -> None:
    """Raise unless ``path`` has the expected hash (when given) and is a complete Tiny ImageNet zip."""
    if expected_sha256:
        actual = file_sha256(path)
        if actual.lower() != expected_sha256.lower():
            raise HashMismatchError(
                f"{source}: sha256 is {actual}, expected {expected_sha256}. The file is corrupt or not the "
                f"one you meant; download it again, or pass the right --sha256."
            )
    check_zip(path, source)


def download(source=OFFICIAL_URL, out_dir="data", sha256=None, progress=True) -> Path:
    """Put ``tiny-imagenet-200.zip`` (or the source's file name) in ``out_dir`` and return its path.

    ``source`` is a URL or a local zip path. What arrives is checked, with or without ``sha256``:
    a complete zip (every member's CRC) holding one Tiny ImageNet folder, and the hash when
    given. It is written to a temporary ``.part`` file and renamed only once checked, so a
    failed download leaves no file. An existing good file is kept (re-running is safe); an
    existing bad one is replaced by a fresh, checked copy.
    """
    if sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 {sha256!r} is not a sha256 hash (64 hex digits); copy it again")
    is_url = str(source).startswith(("http://", "https://"))
    if not is_url and not Path(source).is_file():
        raise FileNotFoundError(f"{source} does not exist: give a URL or the path of a local zip")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    name = Path(str(source).split("?")[0]).name if is_url else Path(source).name
    target = out_dir / name
    target.with_name(target.name + ".part").unlink(missing_ok=True)  # what earlier versions left when killed
    problem = None
    if target.is_file():
        try:
            _verify(target, sha256, target)
            return target
        except (DataFormatError, HashMismatchError) as err:
            if not is_url and Path(source).samefile(target):
                raise  # the source itself: nothing fresh to fetch, and never ours to delete
            problem = err
            log.warning("%s; replacing it with a fresh copy of %s", err, source)
    part = out_dir / temp_name(name, ".part")
    try:
        if is_url:
            _fetch(source, part, progress, name)
        else:
            shutil.copyfile(source, part)
        _verify(part, sha256, source)
        os.replace(part, target)
    except (DataFormatError, HashMismatchError) as err:
        if problem is None:
            raise
        # The old file stays as it was (it may be the user's), but the error says it is bad.
        raise type(err)(f"{err}; also {target}, already there, is bad ({problem}): delete it") from None
    finally:
        part.unlink(missing_ok=True)
    return target


def _fetch(url, part: Path, progress: bool, desc: str) -> None:
    import requests
    from tqdm.auto import tqdm

    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        written = 0
        with (
            open(part, "wb") as f,
            tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar,
        ):
            for block in response.iter_content(1 << 20):
                f.write(block)
                written += len(block)
                bar.update(len(block))
    if total is not None and written != total:
        raise OSError(f"download of {url} stopped after {written} of {total} bytes; run it again")
