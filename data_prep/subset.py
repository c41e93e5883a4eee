"""Make a subset of N classes x M images, optionally split into train/val/test.

The output is itself a dataset that ``load_dataset`` reads: ``wnids.txt``, ``words.txt``,
``<split>/<wnid>/*.JPEG`` (copies of the originals: copy-on-write clones where the file system
offers them; hard links with ``link=True``, which cost no space but make each subset file the
original itself, so that editing one edits both), plus ``manifest.csv`` (one row per
image: file, wnid, class_index, words, split, source) and ``counts.csv``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from . import tiny_imagenet
from .fsutil import atomic_dir, confined, copy_file, make_folder, remove_stale_temps, write_csv, write_text_atomically
from .images import select_files

MANIFEST_FIELDS = ["file", "wnid", "class_index", "words", "split", "source"]
DEFAULT_CLASSES = "first:10"  # what a subset takes where no classes are given: Tiny-10


CLASS_GRAMMAR = (
    "which classes: N or first:N (the alphabetically first N), random:N (N drawn with the seed), a wnid, or "
    "wnid,wnid,... (default: all)"
)


def parse_class_spec(spec):
    """The one reader of the class grammar (``CLASS_GRAMMAR``), for the command lines, the config,
    ``subset`` and the experiments: None, "none" or "all" -> None (every class); N, "N" or
    "first:N" -> N; "random:N" -> "random:N" (drawn with the seed when the dataset is known);
    "a,b" or ["a", "b"] -> ["a", "b"]; one name -> [name]."""
    if spec is None:
        return None
    if isinstance(spec, bool):
        pass  # True is no number of classes
    elif isinstance(spec, int):
        if spec >= 1:
            return spec
    elif isinstance(spec, (list, tuple)):
        names = [str(s).strip() for s in spec if str(s).strip()]
        if names:
            return names
    elif isinstance(spec, str):
        text = spec.strip()
        if text.lower() in ("none", "all"):
            return None
        if text.isdigit() and int(text) >= 1:
            return int(text)
        head, colon, tail = text.partition(":")
        if colon and head in ("first", "random"):
            if tail.strip().isdigit() and int(tail) >= 1:
                return int(tail) if head == "first" else f"random:{int(tail)}"
            raise ValueError(f"classes={spec!r}: {tail!r} is not a number of classes >= 1; write e.g. {head}:10")
        if text and not colon and not text.isdigit():
            return [name.strip() for name in text.split(",") if name.strip()]
    raise ValueError(f"classes={spec!r}: give N or first:N, random:N, a class name or names separated by commas")


def choose_classes(root, spec, seed=0) -> list[str]:
    """The class names ``spec`` (the class grammar) selects from the dataset at ``root``."""
    spec = parse_class_spec(spec)
    available = tiny_imagenet.dataset_classes(root)
    if isinstance(spec, str):  # random:N
        n = int(spec.split(":")[1])
        if n > len(available):
            raise ValueError(f"random:{n}: {root} has {len(available)} classes; choose 1..{len(available)}")
        return sorted(np.random.default_rng(seed).choice(available, n, replace=False).tolist())
    return tiny_imagenet.resolve_classes(root, spec)


def parse_split(split) -> dict[str, int] | None:
    """ "400/50/50" -> {"train": 400, "val": 50, "test": 50}; None keeps the dataset's own val."""
    if split is None:
        return None
    parts = [v.strip() for v in str(split).split("/")]
    if len(parts) != 3 or not all(v.isdigit() for v in parts) or int(parts[0]) == 0:
        raise ValueError(f"split {split!r} must be 'train/val/test' image counts per class, e.g. 400/50/50")
    return dict(zip(tiny_imagenet.SPLITS, (int(v) for v in parts)))


def plan_subset(root, classes=DEFAULT_CLASSES, images_per_class=None, split=None, seed=0):
    """Manifest rows (dicts) of a subset, without writing anything."""
    root = Path(root)
    wnids = choose_classes(root, classes, seed)
    words = tiny_imagenet.read_words(root, wnids)
    per_split = parse_split(split)
    rows = []
    if per_split is not None:
        needed = sum(per_split.values())
        if images_per_class is not None and images_per_class != needed:
            raise ValueError(f"images_per_class={images_per_class} but split {split} needs {needed} per class")
        _require_train_images(root, wnids, needed, split)
        files, labels, _ = select_files(root, "train", wnids, needed, seed)
        for y, wnid in enumerate(wnids):
            members = [f for f, label in zip(files, labels) if label == y]
            start = 0
            for name, count in per_split.items():
                rows += [(f, wnid, y, name) for f in members[start : start + count]]
                start += count
    else:
        for name in ("train", "val"):
            if name == "val" and not (root / "val").is_dir():
                continue
            files, labels, _ = select_files(root, name, wnids, images_per_class if name == "train" else None, seed)
            rows += [(f, wnids[y], int(y), name) for f, y in zip(files, labels)]
    return [
        {
            "file": f"{s}/{w}/{Path(f).name}",
            "wnid": w,
            "class_index": y,
            "words": words[w],
            "split": s,
            "source": str(Path(f).relative_to(root)),
        }
        for f, w, y, s in rows
    ]


def _require_train_images(root: Path, wnids, needed: int, split) -> None:
    """A ``--split`` takes its images from each class's train images: an error naming the split's
    counts and what the folder holds per class when a class has fewer than they add up to."""
    _, labels = tiny_imagenet.split_files(root, "train", wnids)
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(wnids))
    if counts.min() >= needed or counts.min() == 0:  # a class without images: select_files names it
        return
    least = int(counts.min())
    if least == counts.max():
        held = f"only {least} each"
    else:
        short = [f"{w} has {n}" for w, n in zip(wnids, counts) if n < needed]
        held = f"{least} to {counts.max()} each ({', '.join(short[:3])}{' and more' if len(short) > 3 else ''})"
    counts_given = " + ".join(str(v) for v in parse_split(split).values())
    raise ValueError(
        f"split {split} needs {needed} train images per class ({counts_given}), but the classes chosen from "
        f"{root / 'train'} hold {held}; give a split that adds up to at most {least}, "
        f"e.g. {_scaled_split(parse_split(split), least)}"
    )


def _scaled_split(per_split: dict[str, int], most: int) -> str:
    """The split's counts scaled down to add up to at most ``most``, e.g. 400/50/50 -> 320/40/40 for 400."""
    total = sum(per_split.values())
    scaled = {k: v * most // total for k, v in per_split.items()}
    scaled["train"] = max(scaled["train"], 1)
    return "/".join(str(scaled[k]) for k in tiny_imagenet.SPLITS)


def _manifest_text(rows) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def counts_table(rows):
    import pandas as pd

    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index=["wnid", "words"], columns="split", values="file", aggfunc="count", fill_value=0)
    return table[[s for s in tiny_imagenet.SPLITS if s in table.columns]]


def make_subset(
    root, out_dir, classes=DEFAULT_CLASSES, images_per_class=None, split=None, seed=0, link: bool = False
) -> Path:
    """Write the subset to ``out_dir`` and return it. Re-running with the same arguments is a
    no-op; an ``out_dir`` holding a different subset is an error (nothing is overwritten)."""
    root, out_dir = Path(root), Path(out_dir)
    rows = plan_subset(root, classes, images_per_class, split, seed)
    remove_stale_temps(out_dir.parent)  # what an interrupted run left, even if another finished since
    manifest = _manifest_text(rows)
    if not out_dir.exists():
        _write_dataset(root, out_dir, rows, manifest, link)
    _require_same_subset(out_dir, manifest)
    return out_dir


def _require_same_subset(out_dir: Path, manifest: str) -> None:
    """``out_dir`` must hold exactly this subset: one we wrote, an earlier run's, or that of a
    process writing the same subset at the same time."""
    existing = out_dir / "manifest.csv"
    if not (existing.is_file() and existing.read_text() == manifest):
        raise FileExistsError(f"{out_dir} exists and holds something else; choose another output folder")


def _write_dataset(root: Path, out_dir: Path, rows, manifest: str, link: bool = False) -> None:
    """Write ``rows`` as a dataset folder that ``load_dataset`` reads (copies of the originals, or
    hard links with ``link``)."""
    wnids = sorted({r["wnid"] for r in rows})
    words = tiny_imagenet.read_words(root, wnids)
    with atomic_dir(out_dir, exist_ok=True) as tmp:
        for r in rows:
            target = tmp / r["file"]
            make_folder(target.parent)
            source = confined(root / r["source"], root, f"image {r['source']}", follow_symlinks=False)
            copy_file(source, target, link=link)
        write_text_atomically(tmp / "wnids.txt", "".join(f"{w}\n" for w in wnids))
        write_text_atomically(tmp / "words.txt", "".join(f"{w}\t{words[w]}\n" for w in wnids))
        write_csv(tmp / "counts.csv", counts_table(rows))
        write_text_atomically(tmp / "manifest.csv", manifest)  # written last: its presence marks a complete subset


def make_folds(root, out_dir, k=3, classes=DEFAULT_CLASSES, images_per_class=100, seed=0) -> list[Path]:
    """K cross-validation folds of the train images: ``out_dir/fold<i>/`` has fold i as ``val``
    and the other folds as ``train``. Seeded and re-runnable like ``make_subset``."""
    root, out_dir = Path(root), Path(out_dir)
    if k < 2:
        raise ValueError(f"k={k}: cross-validation needs at least 2 folds")
    wnids = choose_classes(root, classes, seed)
    words = tiny_imagenet.read_words(root, wnids)
    files, labels, _ = select_files(root, "train", wnids, images_per_class, seed)
    order = np.random.default_rng(seed).permutation(len(files))
    fold_of = np.empty(len(files), int)
    fold_of[order] = np.arange(len(files)) % k
    folders = []
    for fold in range(k):
        rows = [
            {
                "file": f"{'val' if fold_of[i] == fold else 'train'}/{wnids[y]}/{Path(f).name}",
                "wnid": wnids[y],
                "class_index": int(y),
                "words": words[wnids[y]],
                "split": "val" if fold_of[i] == fold else "train",
                "source": str(Path(f).relative_to(root)),
            }
            for i, (f, y) in enumerate(zip(files, labels))
        ]
        target = out_dir / f"fold{fold}"
        manifest = _manifest_text(rows)
        if not target.exists():
            _write_dataset(root, target, rows, manifest)
        _require_same_subset(target, manifest)
        folders.append(target)
    return folders
