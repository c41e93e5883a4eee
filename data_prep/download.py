"""Fetch the official Tiny ImageNet zip (or take a local copy), checking its hash."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


class HashMismatchError(ValueError):
    pass


def file_sha256(path, chunk=1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected_sha256, source) -> None:
    if expected_sha256:
        actual = file_sha256(path)
        if actual.lower() != expected_sha256.lower():
            raise HashMismatchError(
                f"{source}: sha256 is {actual}, expected {expected_sha256}. The file is corrupt or not the "
                f"one you meant; download it again, or pass the right --sha256."
            )


def download(source=OFFICIAL_URL, out_dir="data", sha256=None, progress=True) -> Path:
    """Put ``tiny-imagenet-200.zip`` (or the source's file name) in ``out_dir`` and return its path.

    ``source`` is a URL or a local zip path. The file is written to ``<name>.part`` and renamed
    only once complete and (when ``sha256`` is given) verified, so a failed download never
    leaves a file that looks complete. An existing verified file is kept (re-running is safe).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    is_url = str(source).startswith(("http://", "https://"))
    name = Path(str(source).split("?")[0]).name if is_url else Path(source).name
    target = out_dir / name
    if target.is_file():
        _verify(target, sha256, target)
        return target
    part = target.with_name(target.name + ".part")
    try:
        if is_url:
            _fetch(source, part, progress)
        else:
            if not Path(source).is_file():
                raise FileNotFoundError(f"{source} does not exist: give a URL or the path of a local zip")
            shutil.copyfile(source, part)
        _verify(part, sha256, source)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _fetch(url, part: Path, progress: bool) -> None:
    import requests
    from tqdm.auto import tqdm

    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        written = 0
        with open(part, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=part.stem,
                                         disable=not progress) as bar:
            for block in response.iter_content(1 << 20):
                f.write(block)
                written += len(block)
                bar.update(len(block))
    if total is not None and written != total:
        raise IOError(f"download of {url} stopped after {written} of {total} bytes; run it again")
