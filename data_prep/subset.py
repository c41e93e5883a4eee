"""Make a subset of N classes x M images, optionally split into train/val/test.

The output is itself a dataset that ``load_dataset`` reads: ``wnids.txt``, ``words.txt``,
``<split>/<wnid>/*.JPEG`` (hard links to the originals), plus ``manifest.csv`` (one row per
image: file, wnid, class_index, words, split, source) and ``counts.csv``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from alexnet_tf import tiny_imagenet
from alexnet_tf.data import select_files

from .fsutil import atomic_dir, link_or_copy

MANIFEST_FIELDS = ["file", "wnid", "class_index", "words", "split", "source"]


def choose_classes(root, spec, seed=0) -> list[str]:
    """``spec``: an int N or "first:N" (alphabetically first N, the seeds' protocol),
    "random:N" (seeded), or a list / comma-separated string of wnids."""
    available = tiny_imagenet.dataset_classes(root)
    if isinstance(spec, str) and spec.startswith("random:"):
        n = int(spec.split(":", 1)[1])
        if not 1 <= n <= len(available):
            raise ValueError(f"random:{n}: {root} has {len(available)} classes")
        return sorted(np.random.default_rng(seed).choice(available, n, replace=False).tolist())
    if isinstance(spec, str) and spec.startswith("first:"):
        spec = int(spec.split(":", 1)[1])
    elif isinstance(spec, str):
        spec = int(spec) if spec.isdigit() else [s.strip() for s in spec.split(",") if s.strip()]
    return tiny_imagenet.resolve_classes(root, spec)


def parse_split(split) -> dict[str, int] | None:
    """"400/50/50" -> {"train": 400, "val": 50, "test": 50}; None keeps the dataset's own val."""
    if split is None:
        return None
    counts = [int(v) for v in str(split).split("/")]
    if len(counts) != 3 or min(counts) < 0 or counts[0] == 0:
        raise ValueError(f"split {split!r} must be 'train/val/test' image counts per class, e.g. 400/50/50")
    return dict(zip(tiny_imagenet.SPLITS, counts))


def plan_subset(root, classes="first:10", images_per_class=None, split=None, seed=0):
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
        files, labels, _ = select_files(root, "train", wnids, needed, seed)
        for y, wnid in enumerate(wnids):
            members = [f for f, label in zip(files, labels) if label == y]
            start = 0
            for name, count in per_split.items():
                rows += [(f, wnid, y, name) for f in members[start:start + count]]
                start += count
    else:
        for name in ("train", "val"):
            if name == "val" and not (root / "val").is_dir():
                continue
            files, labels, _ = select_files(root, name, wnids, images_per_class if name == "train" else None, seed)
            rows += [(f, wnids[y], int(y), name) for f, y in zip(files, labels)]
    return [{"file": f"{s}/{w}/{Path(f).name}", "wnid": w, "class_index": y, "words": words[w], "split": s,
             "source": str(Path(f).relative_to(root))} for f, w, y, s in rows]


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


def make_subset(root, out_dir, classes="first:10", images_per_class=None, split=None, seed=0) -> Path:
    """Write the subset to ``out_dir`` and return it. Re-running with the same arguments is a
    no-op; an ``out_dir`` holding a different subset is an error (nothing is overwritten)."""
    root, out_dir = Path(root), Path(out_dir)
    rows = plan_subset(root, classes, images_per_class, split, seed)
    manifest = _manifest_text(rows)
    if out_dir.exists():
        existing = out_dir / "manifest.csv"
        if existing.is_file() and existing.read_text() == manifest:
            return out_dir
        raise FileExistsError(f"{out_dir} exists and holds something else; choose another output folder")
    _write_dataset(root, out_dir, rows, manifest)
    return out_dir


def _write_dataset(root: Path, out_dir: Path, rows, manifest: str) -> None:
    """Write ``rows`` as a dataset folder that ``load_dataset`` reads (links to the originals)."""
    wnids = sorted({r["wnid"] for r in rows})
    words = tiny_imagenet.read_words(root, wnids)
    with atomic_dir(out_dir) as tmp:
        for r in rows:
            target = tmp / r["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(root / r["source"], target)
        (tmp / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
        (tmp / "words.txt").write_text("".join(f"{w}\t{words[w]}\n" for w in wnids))
        counts_table(rows).to_csv(tmp / "counts.csv")
        (tmp / "manifest.csv").write_text(manifest)  # written last: its presence marks a complete subset


def make_folds(root, out_dir, k=3, classes="first:10", images_per_class=100, seed=0) -> list[Path]:
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
        rows = [{"file": f"{'val' if fold_of[i] == fold else 'train'}/{wnids[y]}/{Path(f).name}", "wnid": wnids[y],
                 "class_index": int(y), "words": words[wnids[y]], "split": "val" if fold_of[i] == fold else "train",
                 "source": str(Path(f).relative_to(root))} for i, (f, y) in enumerate(zip(files, labels))]
        target = out_dir / f"fold{fold}"
        manifest = _manifest_text(rows)
        if not (target / "manifest.csv").is_file() or (target / "manifest.csv").read_text() != manifest:
            if target.exists():
                raise FileExistsError(f"{target} exists and holds something else; choose another output folder")
            _write_dataset(root, target, rows, manifest)
        folders.append(target)
    return folders
