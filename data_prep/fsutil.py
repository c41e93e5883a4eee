"""Safe file operations shared by the data_prep steps: nothing the user had is lost.

Every step writes into a hidden temporary folder beside its target and renames it into
place when complete, so an interrupted run leaves no folder that looks finished, and
originals are only ever read (hard-linked or copied, never moved or deleted).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no extra disk space); copy where links are impossible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def check_writable(folder: Path) -> None:
    """Fail early, naming the folder, if nothing can be written there (tried, not guessed)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise NotADirectoryError(f"{probe} is not a folder")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write to {folder} ({err}); choose another output folder") from None


@contextmanager
def atomic_dir(target: Path):
    """Yield a temporary folder; on success rename it to ``target`` (which must not exist yet)."""
    target = Path(target)
    check_writable(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        yield tmp
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(folder: Path) -> None:
    """Remove temporary folders an interrupted earlier run of ours left behind."""
    folder = Path(folder)
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith(".tmp-") and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
