"""The one module that writes: every file and folder the project writes (data_prep and alexnet_tf
alike) is written here, so that three rules hold everywhere (tests/test_one_writer.py finds any
write elsewhere):

- **Atomic.** A file or folder is written under a hidden temporary name beside its target and
  renamed into place when complete, so an interrupted run leaves nothing that looks finished.
  The files that grow or stay open are the named exceptions, each opened in one place below:
  the per-epoch CSV log (``csv_log``), TensorBoard's event files (``tensorboard_log``) and a run's
  lock file (``open_lock_file``).
- **Confined.** Callers pass only paths inside a folder the user named on the command line (or its
  documented default); ``confined`` resolves a path built from input (a zip member, a record's
  name, a symlink) and refuses one that leads outside.
- **Nothing of the user's replaced.** Originals are only read: copied (a copy-on-write clone where
  the file system has one), hard-linked only on request, never moved or deleted. ``new=True``
  refuses to write over a file that is already there.

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


# Linux's FICLONE ioctl: a copy-on-write clone (btrfs, XFS, bcachefs) that shares blocks until
# either file is written, so a copy costs no disk space where the file system allows it.
_FICLONE = 0x40049409


def copy_file(src: Path, dst: Path, link: bool = False) -> None:
    """Put a copy of ``src`` at ``dst`` (which must not exist): a copy-on-write clone where the
    file system offers one, else a plain copy, so that editing either file never changes the
    other. ``link``: a hard link instead (no disk space, but the two names are one file: editing
    one edits both), with a copy where links are impossible."""
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    with open(src, "rb") as source, open(dst, "xb") as target:
        try:
            import fcntl

            fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
            return
        except (ImportError, OSError):
            pass
        shutil.copyfileobj(source, target, 1 << 20)
    shutil.copystat(src, dst)


def confined(path, folder, what: str, follow_symlinks: bool = True) -> Path:
    """``path``, resolved; a ValueError naming ``what`` unless it lies inside ``folder``: a path
    built from input never leads outside the folder it belongs to. ``follow_symlinks``: judge where
    symlinks lead (a place to write); without it, judge the names alone ('..', an absolute path),
    for files that are only read from a dataset whose folders may be links to another disk."""
    resolve = os.path.realpath if follow_symlinks else os.path.abspath
    resolved, root = Path(resolve(path)), Path(resolve(folder))
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"{what} leads outside {folder} (to {resolved}); refused, nothing was written")
    return Path(path)


def make_folder(path) -> Path:
    """Create the folder ``path`` (and its parents) if it is not there yet."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_file(path) -> None:
    """Remove a file the project wrote (a temporary one, a lock file); nothing if it is gone."""
    Path(path).unlink(missing_ok=True)


def remove_tree(path) -> None:
    """Remove a folder the project wrote (a backup, a temporary extraction, a damaged cache entry)."""
    shutil.rmtree(path, ignore_errors=True)


def replace_file(src, dst) -> None:
    """Rename the project's file ``src`` to ``dst`` in one step (a backup's rotation)."""
    os.replace(src, dst)


def move_aside(path) -> Path:
    """Rename ``path`` (a file that is in the way, e.g. a broken download) to the first free name
    ``<name>.old``, ``<name>.old-2``, ...; returns that name, for the message that gives it. The new
    name is taken with a hard link, which fails rather than replace a file that appeared meanwhile."""
    path = Path(path)
    n = 1
    while True:
        aside = path.with_name(f"{path.name}.old" + (f"-{n}" if n > 1 else ""))
        try:
            os.link(path, aside)
        except FileExistsError:
            n += 1
            continue
        os.unlink(path)
        return aside


def refuse_existing(path, way_out: str) -> None:
    """A FileExistsError naming ``path`` and what to do, if something is already there."""
    if os.path.lexists(path):
        raise FileExistsError(f"{path} already exists and is left as it is; {way_out}")


@contextmanager
def atomic_file(path, new: bool = False, way_out: str = "give another path, or move that file away first"):
    """Yield a temporary path beside ``path`` (with the same suffix, for writers that choose the
    format by it: Keras, matplotlib, Pillow); once the block ends without error it is renamed to
    ``path``, so readers see the old file or the new one, never half of one, and a failed write (a
    full disk) leaves nothing behind. ``new``: refuse (before writing) if ``path`` exists."""
    path = Path(path)
    if new:
        refuse_existing(path, way_out)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    tmp = path.with_name(temp_name(path.stem[:40], suffix))
    try:
        yield tmp
        if new:
            try:  # a link fails, where a rename would replace, if the file appeared while we wrote
                os.link(tmp, path)
            except FileExistsError:
                refuse_existing(path, way_out)
            except OSError:  # a file system without hard links
                refuse_existing(path, way_out)
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_stream(tmp: Path, blocks) -> int:
    """Write the byte blocks of ``blocks`` (a download) to ``tmp``, a temporary path that
    ``atomic_file`` gave; returns the number of bytes written."""
    written = 0
    with open(tmp, "wb") as f:
        for block in blocks:
            f.write(block)
            written += len(block)
    return written


def write_csv(path, frame, **options) -> None:
    """A pandas DataFrame as CSV (``options``: those of ``DataFrame.to_csv``)."""
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, **options)


def write_rows(path, header, rows) -> None:
    """A CSV file from a header and rows of values (the csv module's quoting)."""
    import csv

    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def save_figure(fig, path, **options) -> None:
    """A matplotlib figure (``options``: those of ``Figure.savefig``); the folder is made if needed."""
    make_folder(Path(path).parent)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, **options)


def save_image(image, path, **options) -> None:
    """A Pillow image, in the format its file name says."""
    with atomic_file(path) as tmp:
        image.save(tmp, format=image.format or None, **options)


def save_array(path, array) -> None:
    """A numpy array as ``.npy``."""
    import numpy as np

    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def save_arrays(path, arrays: dict, new: bool = False) -> None:
    """Named numpy arrays as one ``.npz`` (uncompressed). ``new``: refuse an existing file."""
    import numpy as np

    with atomic_file(path, new=new) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def save_model(model, path, new: bool = False, way_out: str = "give another path, or move that file away first"):
    """A Keras model (``.keras``; ``.h5`` writes the legacy HDF5 format). ``new``: refuse an
    existing file, naming it and ``way_out``."""
    with atomic_file(path, new=new, way_out=way_out) as tmp:
        model.save(tmp)


def save_weights(model, path) -> None:
    """A Keras model's weights (``.weights.h5``), its optimizer's state included."""
    with atomic_file(path) as tmp:
        model.save_weights(tmp)


def extract_members(archive, members, folder: Path) -> None:
    """Extract the zip ``archive``'s ``members`` into ``folder`` (a temporary folder the caller
    renames into place), refusing any member that would land outside it."""
    for name in members:  # by name: nothing is extracted yet, so there is no link to follow
        confined(folder / name, folder, f"zip member {name!r}", follow_symlinks=False)
    archive.extractall(folder, members)


def open_lock_file(path):
    """The lock file of a run (one of the named exceptions: it stays open while the run holds it)."""
    return open(path, "a+")  # held open for the run: the lock lives as long as the file


def csv_log(path, append: bool):
    """Keras' per-epoch CSV log (a named exception: it grows by one row an epoch)."""
    import keras

    return keras.callbacks.CSVLogger(str(path), append=append)


def tensorboard_log(folder):
    """Keras' TensorBoard callback (a named exception: its event files grow as the run goes)."""
    import keras

    return keras.callbacks.TensorBoard(str(folder))


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


def write_text_atomically(path: Path, text: str, new: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it there: readers see the old
    file or the new one, never half of one; a failed write (a full disk) leaves nothing behind."""
    with atomic_file(path, new=new) as tmp:
        tmp.write_text(text)


def rename_into_place(tmp: Path, target: Path) -> bool:
    """Rename ``tmp`` to ``target``; False (``tmp`` removed) if ``target`` appeared meanwhile,
    i.e. another process finished the same work first."""
    try:
        if os.path.lexists(target):  # POSIX would let a rename replace an empty folder
            raise FileExistsError(target)
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
