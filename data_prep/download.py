"""Fetch the official Tiny ImageNet zip (or take a local copy), checking what arrived."""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from pathlib import Path

from .extract import check_zip
from .fsutil import (
    atomic_file,
    check_writable,
    copy_file,
    file_sha256,
    make_folder,
    move_aside,
    remove_stale_temps,
    write_stream,
    write_text_atomically,
)
from .tiny_imagenet import DataFormatError

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


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
    given. It is written to a temporary file and renamed only once checked, so a failed
    download leaves no file. A file already at the target is used only when it is what was asked
    for: the same content as the local source, the given ``sha256``, or the file this function
    downloaded from the same URL before (its record ``.<name>.source.json`` beside it). A complete
    zip of anything else there is the user's: left as it is, with an error saying what to do. A
    broken one (not a complete zip) is moved aside to ``<name>.old`` once a good copy has arrived,
    and the message says so.
    """
    if sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 {sha256!r} is not a sha256 hash (64 hex digits); copy it again")
    is_url = str(source).startswith(("http://", "https://"))
    if not is_url and not Path(source).is_file():
        raise FileNotFoundError(f"{source} does not exist: give a URL or the path of a local zip")
    out_dir = Path(out_dir)
    name = Path(str(source).split("?")[0]).name if is_url else Path(source).name
    target = out_dir / name
    if not is_url and target.is_file() and Path(source).samefile(target):
        _verify(target, sha256, target)  # the source itself: nothing to copy
        return target
    check_writable(out_dir)
    make_folder(out_dir)
    remove_stale_temps(out_dir)
    problem = None
    if os.path.lexists(target):
        if _is_what_was_asked(target, source, is_url, sha256):
            _verify(target, sha256, target)
            return target
        problem = _broken_zip(target)  # broken: moved aside below, once a good copy is here
        if problem is None:
            raise FileExistsError(
                f"{target} already exists and is not {'the zip at ' if is_url else ''}{source}"
                f"{'' if sha256 or not is_url else ' as far as can be told (no --sha256, no record of downloading it)'}"
                f"; it is left as it is: move it away, give --out another folder"
                f"{'' if sha256 else ', or pass --sha256 of the zip you want (a file with that hash is used)'}"
            )
    try:
        with atomic_file(target) as part:
            if is_url:
                _fetch(source, part, progress, name)
            else:
                copy_file(source, part)
            _verify(part, sha256, source)
            if problem is not None:
                aside = move_aside(target)
                print(f"{target} was broken ({problem}); it is kept as {aside}: delete it if you do not need it")
    except (DataFormatError, HashMismatchError) as err:
        if problem is None:
            raise
        # The old file stays as it was (it may be the user's), but the error says it is bad.
        raise type(err)(f"{err}; also {target}, already there, is bad ({problem}): delete it") from None
    write_text_atomically(_record(target), json.dumps({"source": str(source), "sha256": file_sha256(target)}))
    return target


def _broken_zip(path: Path) -> str | None:
    """Why ``path`` is not a complete zip file (a cut download), or None: a complete zip of any
    content is someone's file, never "broken"."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, OSError) as err:
        return f"not a complete zip file ({err})"
    return None if bad is None else f"{bad} fails its CRC check"


def _record(target: Path) -> Path:
    return target.with_name(f".{target.name}.source.json")


def _is_what_was_asked(target: Path, source, is_url: bool, sha256) -> bool:
    """Whether the file at ``target`` is what ``source`` (and ``sha256``) ask for."""
    if not target.is_file():
        return False
    have = file_sha256(target)
    if sha256:
        return have == sha256.lower()
    if not is_url:
        return have == file_sha256(source)
    try:
        record = json.loads(_record(target).read_text())
        return record["source"] == str(source) and record["sha256"] == have
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _fetch(url, part: Path, progress: bool, desc: str) -> None:
    import requests
    from tqdm.auto import tqdm

    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:

            def blocks():
                for block in response.iter_content(1 << 20):
                    bar.update(len(block))
                    yield block

            written = write_stream(part, blocks())
    if total is not None and written != total:
        raise OSError(f"download of {url} stopped after {written} of {total} bytes; run it again")
