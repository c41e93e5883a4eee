"""Unzip Tiny ImageNet and check its layout (and, on request, that every image decodes)."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from . import tiny_imagenet
from .fsutil import (
    check_writable,
    extract_members,
    file_sha256,
    make_folder,
    make_temp_dir,
    remove_stale_temps,
    remove_tree,
    rename_into_place,
    write_text_atomically,
)

# What a damaged zip raises besides BadZipFile: a cut stream, bad deflate data, an unknown method.
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError)


def unsafe_member(name: str) -> bool:
    """Whether a zip member's name could land outside the folder it is extracted into: an
    absolute path, a drive, or a '..' part."""
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or bool(PureWindowsPath(name).drive) or ".." in posix.parts


def dataset_folder(zip_path, names) -> str:
    """The folder inside the zip that holds wnids.txt (e.g. "tiny-imagenet-200", or
    "outer/tiny-imagenet-200" one level deeper); an error naming the zip unless exactly one.
    A member whose name leads outside the zip's own folder ('../x', '/etc/x') is refused first,
    naming it, before anything is written."""
    unsafe = [n for n in names if unsafe_member(n)]
    if unsafe:
        raise tiny_imagenet.DataFormatError(
            f"{zip_path} holds {len(unsafe)} member(s) whose path leads outside the folder it is extracted "
            f"into, e.g. {unsafe[0]!r}; refused before writing anything: use an untampered copy of the zip"
        )
    found = sorted(n[: -len("/wnids.txt")] for n in names if n.endswith("/wnids.txt") and not n.startswith("__MACOSX/"))
    if "wnids.txt" in names:
        raise tiny_imagenet.DataFormatError(
            f"{zip_path} holds wnids.txt at its top level: zip the dataset folder itself "
            f"(tiny-imagenet-200/ with wnids.txt inside)"
        )
    if not found:
        raise tiny_imagenet.DataFormatError(
            f"{zip_path} holds no wnids.txt: it is not a Tiny ImageNet zip; download tiny-imagenet-200.zip again"
        )
    if len(found) > 1:
        raise tiny_imagenet.DataFormatError(
            f"{zip_path} holds {len(found)} dataset folders ({', '.join(found[:5])}); it should hold one"
        )
    return found[0]


def check_zip(zip_path, label=None) -> str:
    """Check that ``zip_path`` is a complete zip (central directory, every member's CRC) holding
    one Tiny ImageNet folder; returns that folder's path inside the zip. Errors name ``label``
    (default: the path) and say what to do."""
    label = label or zip_path
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
    except _ZIP_ERRORS as err:
        raise tiny_imagenet.DataFormatError(f"{label} is not a complete zip file ({err}); download it again") from None
    if bad is not None:
        raise tiny_imagenet.DataFormatError(f"{label} is corrupt: {bad} fails its CRC check; download it again")
    return dataset_folder(label, names)


SOURCE_RECORD = ".source.json"  # inside an extracted folder: the zip it came from


def _zip_identity(zip_path: Path, sha256=None) -> dict:
    st = zip_path.stat()
    return {
        "zip": str(zip_path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256 or file_sha256(zip_path),
    }


def _extracted_from(root: Path, zip_path: Path) -> bool:
    """Whether ``root`` was extracted from this zip: its record names the same size and time,
    or (a copied or touched zip) the same content hash. A folder without a record is another's."""
    try:
        record = json.loads((root / SOURCE_RECORD).read_text())
        st = zip_path.stat()
        if record["size"] == st.st_size and record["mtime_ns"] == st.st_mtime_ns:
            return True
        return record["size"] == st.st_size and record["sha256"] == file_sha256(zip_path)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def extract(zip_path, out_dir="data") -> Path:
    """Extract ``zip_path`` into ``out_dir`` and return the dataset root (e.g. data/tiny-imagenet-200).

    The folder records the zip it came from (size, time and sha256, in ``.source.json``) and is
    reused only for that zip, so re-running is a no-op; another zip (or a folder of unknown
    origin at the same place) gets its own folder, named with its hash
    (data/tiny-imagenet-200-<sha256[:8]>), never the other one's images. Extraction goes to a
    temporary folder that is renamed when complete, so two processes extracting the same zip at
    once both end with the one finished folder.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path} does not exist; run 'python -m data_prep download' first")
    check_writable(out_dir)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
            inner = dataset_folder(zip_path, names)
            remove_stale_temps(out_dir)  # what an interrupted run left, even if another finished since
            root = out_dir / Path(inner).name
            if _extracted_from(root, zip_path):
                return root
            identity = _zip_identity(zip_path)
            if root.exists():
                root = out_dir / f"{Path(inner).name}-{identity['sha256'][:8]}"
                if _extracted_from(root, zip_path):
                    return root
            make_folder(out_dir)
            tmp = make_temp_dir(out_dir, "extract")
            try:
                extract_members(archive, [n for n in names if n.startswith(inner + "/")], tmp)
                write_text_atomically(tmp / inner / SOURCE_RECORD, json.dumps(identity, indent=2))
                # The folder appears only once complete; if another process finished it first, that
                # one stands when it is this zip's.
                if not rename_into_place(tmp / inner, root) and not _extracted_from(root, zip_path):
                    raise FileExistsError(f"{root} appeared while extracting and holds something else; run again")
            finally:
                remove_tree(tmp)
    except _ZIP_ERRORS as err:
        raise tiny_imagenet.DataFormatError(
            f"{zip_path} is not a complete zip file ({err}); download it again"
        ) from None
    return root


def summary_table(summary) -> str:
    rows = ["split  classes  images  min/class  max/class"]
    for split, s in summary.items():
        rows.append(f"{split:<6} {s['classes']:>7} {s['images']:>7} {s['min_per_class']:>10} {s['max_per_class']:>10}")
    return "\n".join(rows)


class UndecodableImages(tiny_imagenet.DataFormatError):
    """Some images of a dataset do not decode; ``failures`` holds one message per file."""

    def __init__(self, root, failures, total):
        self.failures = failures
        super().__init__(
            f"{len(failures)} of {total} images in {root} do not decode; re-extract the dataset or remove those files"
        )


class CheckSummary(dict):
    """``check``'s summary: ``{split: {"classes", "images", "min_per_class", "max_per_class"}}``, and in
    ``shared`` the images of a split that are also in an earlier one, by content:
    ``{(split, earlier split): [(file, its twin), ...]}`` (empty when none)."""

    def __init__(self, summary, root, shared=None):
        super().__init__(summary)
        self.root = Path(root)
        self.shared = shared or {}

    def shared_report(self, listed=5) -> list[str]:
        """Lines saying how many images each split shares with an earlier one, and the first ``listed``."""
        lines = []
        for (split, other), pairs in self.shared.items():
            consequence = (
                "train refuses to validate on them unless --allow-shared-images"
                if other == "train" and split == "val"
                else f"scores on {split} count them"
            )
            lines.append(f"{len(pairs)} {split} image(s) are also {other} images (the same bytes); {consequence}:")
            lines += [f"  {_relative(a, self.root)} is {_relative(b, self.root)}" for a, b in pairs[:listed]]
            if len(pairs) > listed:
                lines.append(f"  ... and {len(pairs) - listed} more")
        return lines


def _relative(path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def dataset_images(root) -> list[Path]:
    """The dataset's own image files (train, val, test, in any layout the loader reads), not
    reorganised copies."""
    return [f for files, _ in tiny_imagenet.split_images(root).values() for f in files]


def _failures(files) -> list[str]:
    from .images import decode_image

    messages = []
    for f in files:
        try:
            decode_image(f)
        except tiny_imagenet.DataFormatError as err:
            messages.append(str(err))
    return messages


def undecodable_images(files, workers=None) -> list[str]:
    """One message (naming the file) per image that does not decode, in the order of ``files``."""
    from .images import map_file_chunks

    return [message for part in map_file_chunks(_failures, files, workers) for message in part]


def shared_between_splits(splits, hashes) -> dict:
    """``{(split, earlier split): [(file, its twin), ...]}`` for the images of val and test whose
    content is also in an earlier split (train; val for test). ``splits``: ``{split: files}``;
    ``hashes``: ``{split: file_hashes(files)}``."""
    from .images import shared_images

    order = [s for s in tiny_imagenet.SPLITS if s in splits]
    shared = {}
    for i, split in enumerate(order):
        for other in order[:i]:
            pairs = shared_images((splits[other], hashes[other]), (splits[split], hashes[split]))
            if pairs:
                shared[(split, other)] = pairs
    return shared


def check(root, decode=False) -> CheckSummary:
    """Check a dataset folder, in any layout the loader reads (raises DataFormatError naming the bad
    file); the summary's ``shared`` names the images that are in two splits, by content (the
    files' sha256), which ``train`` refuses unless told to accept them.

    With ``decode``, every image is decoded too; UndecodableImages lists those that fail.
    """
    from .images import file_hashes

    splits = tiny_imagenet.split_images(root)
    summary = tiny_imagenet.check_layout(root, splits)
    files = {split: found for split, (found, _) in splits.items()}
    if decode:
        failures = undecodable_images([f for found in files.values() for f in found])
        if failures:
            raise UndecodableImages(root, failures, sum(len(found) for found in files.values()))
    hashes = {split: file_hashes(found) for split, found in files.items()}
    return CheckSummary(summary, root, shared_between_splits(files, hashes))
