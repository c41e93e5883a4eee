"""Reorganise Tiny ImageNet into class folders without touching the originals.

* ``val/images`` + ``val_annotations.txt`` -> ``val/<wnid>/*.JPEG`` (what Keras'
  ``image_dataset_from_directory`` and ``flow_from_directory`` need; pass them the class
  names, because the original ``val/images`` folder stays beside the class folders).
* optionally ``train/<wnid>/images/*.JPEG`` -> ``train_images/<wnid>/*.JPEG`` (no ``images`` level).

Files are copied (a copy-on-write clone where the file system offers one), or hard-linked with
``link=True``: no extra disk space, but each new name is then the original file itself, so
editing one edits the other. Each class folder is built in a
temporary folder and renamed when complete: running twice is a no-op, and an interrupted run
is finished by running it again.
"""

from __future__ import annotations

from pathlib import Path

from . import tiny_imagenet
from .fsutil import atomic_dir, confined, copy_file, make_folder, remove_stale_temps


def _write_class_folders(root: Path, target_root: Path, groups: dict[str, list[Path]], link: bool = False) -> int:
    """Create ``target_root/<class>/`` with copies of (or links to) each group's files, all inside
    the dataset ``root``; returns folders made."""
    make_folder(target_root)
    remove_stale_temps(target_root)
    made = 0
    for name in sorted(groups):
        target = target_root / name
        if not target.is_dir():
            # exist_ok: a process running the same step at once may finish this folder first.
            with atomic_dir(target, exist_ok=True) as tmp:
                for src in groups[name]:
                    copy_file(confined(src, root, f"image {src}", follow_symlinks=False), tmp / src.name, link=link)
            made += 1
        expected = sorted(p.name for p in groups[name])
        if sorted(p.name for p in tiny_imagenet.list_images(target)) != expected:
            raise tiny_imagenet.DataFormatError(
                f"{target} exists but does not hold the expected {len(expected)} images; move it aside and run again"
            )
    return made


def reorganise_val(root, link: bool = False) -> int:
    """val/images + val_annotations.txt -> val/<wnid>/; returns the number of folders created."""
    root = Path(root)
    groups: dict[str, list[Path]] = {}
    for a in tiny_imagenet.read_val_annotations(root):
        groups.setdefault(a.wnid, []).append(root / "val" / "images" / a.file)
    return _write_class_folders(root, root / "val", groups, link)


def flatten_train(root, out_name="train_images", link: bool = False) -> int:
    """train/<wnid>/images/*.JPEG -> <out_name>/<wnid>/*.JPEG; returns the number of folders created."""
    root = Path(root)
    groups = {w: tiny_imagenet.list_images(root / "train" / w / "images") for w in tiny_imagenet.read_wnids(root)}
    return _write_class_folders(root, root / out_name, groups, link)
