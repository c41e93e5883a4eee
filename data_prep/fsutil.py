"""Safe file operations shared by the data_prep steps: nothing the user had is lost.

Every step writes into a hidden temporary folder (or ``.part`` file) beside its target and
renames it into place when complete, so an interrupted run leaves nothing that looks
finished, and originals are only ever read (hard-linked or copied, never moved or deleted).

Temporary names carry their owner (``.tmp-<pid>-<host>-<label>-<random>``): the next run
removes those whose process is gone, and never one that a live process is still writing.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

# Hashed so that any host name makes a plain token; tells this machine's temps from those
# another machine writes into a shared folder (whose processes we cannot see).
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_OWNED = re.compile(r"\.tmp-(\d+)-([0-9a-f]{8})-")


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no extra disk space); copy where links are impossible."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def file_sha256(path, chunk=1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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


def temp_name(label: str, suffix: str = "", pid: int | None = None) -> str:
    """A hidden name for a temporary file or folder of this process (``pid`` only for tests)."""
    return f".tmp-{os.getpid() if pid is None else pid}-{_HOST}-{label}-{secrets.token_hex(4)}{suffix}"


def make_temp_dir(parent: Path, label: str) -> Path:
    """A fresh temporary folder in ``parent``. A plain mkdir (not mkdtemp, which makes 0700
    folders), so the folder renamed into place has the mode the user's umask gives any folder."""
    while True:
        path = Path(parent) / temp_name(label)
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _owner_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's live process
        return False
    return False


def remove_stale_temps(folder: Path) -> None:
    """Remove temporary files and folders that interrupted runs of ours left in ``folder``.

    Only names of our own pattern written on this machine by a process that no longer runs:
    another process's work in progress, and anything else the user keeps there, stay.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        match = _OWNED.match(entry.name)
        if not match or match.group(2) != _HOST or not _owner_is_gone(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it there: readers see the old
    file or the new one, never half of one; a failed write (a full disk) leaves nothing behind."""
    tmp = path.with_name(temp_name(path.name))
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rename_into_place(tmp: Path, target: Path) -> bool:
    """Rename ``tmp`` to ``target``; False (``tmp`` removed) if ``target`` appeared meanwhile,
    i.e. another process finished the same work first."""
    try:
        tmp.rename(target)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if target.is_dir():
            return False
        raise


@contextmanager
def atomic_dir(target: Path, exist_ok: bool = False):
    """Yield a temporary folder; on success rename it to ``target`` (which must not exist yet).

    If ``target`` appears meanwhile (another process finished first), the temporary copy is
    dropped: with ``exist_ok`` the finished target stands, else FileExistsError.
    """
    target = Path(target)
    check_writable(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target.parent)
    tmp = make_temp_dir(target.parent, target.name)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not rename_into_place(tmp, target) and not exist_ok:
        raise FileExistsError(f"{target} appeared while this run was writing it; choose another output folder")
