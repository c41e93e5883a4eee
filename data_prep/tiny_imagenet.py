"""The on-disk Tiny ImageNet format, in one place.

Every other module asks this one how the dataset is laid out:

    <root>/wnids.txt                       one wnid per line (the 200 classes)
    <root>/words.txt                       "<wnid>\t<names>" for all of ImageNet
    <root>/train/<wnid>/images/*.JPEG      training images
    <root>/train/<wnid>/<wnid>_boxes.txt   bounding boxes (unused here)
    <root>/val/images/*.JPEG               validation images, flat ...
    <root>/val/val_annotations.txt         ... labelled by "<file>\t<wnid>\tx0\ty0\tx1\ty1"
    <root>/test/images/*.JPEG              unlabelled test images (optional)

Only ``test`` may be unlabelled: any other split must come with its labels (val's annotations
file, or class folders), so no caller ever gets placeholder labels by accident.

It also understands the plain class-per-folder layout (``<root>/<split>/<class>/*.jpg``)
that ``data_prep reorganise`` and ``data_prep subset`` write, so the same loader works
on the official layout, on reorganised folders and on any ImageFolder-style dataset.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp")
SPLITS = ("train", "val", "test")


class DataFormatError(ValueError):
    """A dataset file is missing or malformed; the message names the file and what to do."""


def is_image_file(name: str) -> bool:
    """True for image files; False for junk such as .DS_Store, Thumbs.db or boxes files."""
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(name: str):
    """Sort key that orders "img_2" before "img_10" so "first M images" means what it says."""
    parts = _DIGIT_RUNS.split(name)  # text, digits, text, ...: every odd part is a run of digits
    parts[1::2] = map(int, parts[1::2])
    return parts


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order; junk files are ignored."""
    return sorted((folder / n for n in os.listdir(folder) if is_image_file(n)), key=lambda p: natural_key(p.name))


def is_tiny_imagenet(root) -> bool:
    return (Path(root) / "wnids.txt").is_file()


def require_folder(root) -> Path:
    """``root`` as a Path; a DataFormatError if it is a file (say, the zip instead of its folder)."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DataFormatError(
            f"{root} is a file, not a folder: give the extracted dataset folder, e.g. data/tiny-imagenet-200"
        )
    return root


def read_wnids(root) -> list[str]:
    """The dataset's wnids in file order (the official file is not sorted)."""
    require_folder(root)
    path = Path(root) / "wnids.txt"
    if not path.is_file():
        raise DataFormatError(f"{path} is missing: is {root} an extracted Tiny ImageNet folder?")
    wnids = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        wnid = line.strip()
        if not wnid:
            continue
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", wnid):
            raise DataFormatError(f"{path}, line {number}: {line!r} is not a wnid")
        wnids.append(wnid)
    if len(set(wnids)) != len(wnids):
        raise DataFormatError(f"{path} lists a wnid twice")
    if not wnids:
        raise DataFormatError(f"{path} is empty")
    return wnids


def read_words(root, wnids=None) -> dict[str, str]:
    """wnid -> human-readable names from words.txt (restricted to ``wnids`` if given).

    A missing words.txt is not fatal: the wnid stands in as its own name.
    """
    path = Path(root) / "words.txt"
    words = {}
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            wnid, sep, names = line.partition("\t")
            if not sep:
                raise DataFormatError(f"{path}, line {number}: expected '<wnid><TAB><names>', got {line!r}")
            words[wnid.strip()] = names.strip()
    if wnids is None:
        return words
    return {w: words.get(w, w) for w in wnids}


@dataclass(frozen=True)
class ValAnnotation:
    file: str
    wnid: str
    box: tuple[int, int, int, int]


def read_val_annotations(root, check_files: bool = True) -> list[ValAnnotation]:
    """Parse val/val_annotations.txt; errors name the file and line."""
    root = require_folder(root)
    path = root / "val" / "val_annotations.txt"
    if not path.is_file():
        raise DataFormatError(_missing_annotations(path))
    known = set(read_wnids(root)) if is_tiny_imagenet(root) else None
    image_dir = root / "val" / "images"
    present = set(os.listdir(image_dir)) if check_files and image_dir.is_dir() else None
    annotations, seen = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 6:
            raise DataFormatError(
                f"{path}, line {number}: expected 6 tab-separated fields, got {len(fields)}: {line!r}"
            )
        name, wnid = fields[0].strip(), fields[1].strip()
        try:
            box = tuple(int(v) for v in fields[2:])
        except ValueError:
            raise DataFormatError(f"{path}, line {number}: box coordinates are not integers: {line!r}") from None
        if known is not None and wnid not in known:
            raise DataFormatError(f"{path}, line {number}: wnid {wnid!r} is not in wnids.txt")
        if check_files and (present is None or name not in present):
            raise DataFormatError(f"{path}, line {number}: {image_dir / name} does not exist")
        if name in seen:
            raise DataFormatError(f"{path}, line {number}: {name} is annotated twice")
        seen.add(name)
        annotations.append(ValAnnotation(name, wnid, box))
    return annotations


def _missing_annotations(path: Path) -> str:
    return (
        f"{path} is missing: the validation labels live there. Re-extract the official zip "
        f"(python -m data_prep extract) or use a folder with val/<class>/ subfolders."
    )


def class_image_dir(split_dir: Path, class_name: str) -> Path:
    """Where a class's images are: ``<class>/images/`` (official train) or ``<class>/`` (class folders)."""
    nested = split_dir / class_name / "images"
    return nested if nested.is_dir() else split_dir / class_name


def dataset_classes(root) -> list[str]:
    """All class names of a dataset, sorted: label i is the i-th of these everywhere in the project."""
    root = require_folder(root)
    if not root.exists():
        raise DataFormatError(f"{root} does not exist: give the dataset folder, e.g. data/tiny-imagenet-200")
    if is_tiny_imagenet(root):
        return sorted(read_wnids(root))
    train = root / "train"
    if not train.is_dir():
        raise DataFormatError(f"{root} has neither wnids.txt nor a train/ folder of class subfolders")
    classes = sorted(d.name for d in train.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataFormatError(f"{train} has no class subfolders")
    return classes


def resolve_classes(root, classes=None) -> list[str]:
    """``classes``: None (all), an int N (the alphabetically first N) or a list of class names."""
    available = dataset_classes(root)
    if classes is None:
        return available
    if isinstance(classes, int) and not isinstance(classes, bool):
        if not 1 <= classes <= len(available):
            raise ValueError(f"classes={classes}: {root} has {len(available)} classes; choose 1..{len(available)}")
        return available[:classes]
    chosen = list(classes)
    if not chosen:
        raise ValueError(f"classes is empty: name at least one class of {root}, or pass an int for the first N")
    unknown = [c for c in chosen if c not in set(available)]
    if unknown:
        raise ValueError(
            f"unknown class name(s) {unknown} for {root}; known classes include {available[:5]} "
            f"(see wnids.txt, or pass an int for the first N)"
        )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"classes lists a name twice: {chosen}")
    return sorted(chosen)


def _class_folders(split_dir: Path) -> list[str]:
    """Subfolders that hold a class each; ``images`` is the flat folder of the official layout."""
    return sorted(
        d.name for d in split_dir.iterdir() if d.is_dir() and d.name != "images" and not d.name.startswith(".")
    )


def split_layout(root, split: str) -> str:
    """How a split is labelled: "annotations" (official val), "class_folders" or "unlabelled".

    Only Tiny ImageNet's test split (``test/images/`` without class folders) is unlabelled; any
    other split without its labels is a DataFormatError naming what is missing, never a split
    of placeholder labels.
    """
    root = Path(root)
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataFormatError(f"{split_dir} does not exist: {root} has no {split!r} split")
    if split == "val" and (split_dir / "val_annotations.txt").is_file():
        return "annotations"
    if _class_folders(split_dir):
        return "class_folders"
    if (split_dir / "images").is_dir():
        if split == "test":
            return "unlabelled"
        if split == "val":
            raise DataFormatError(_missing_annotations(split_dir / "val_annotations.txt"))
        raise DataFormatError(
            f"{split_dir / 'images'} holds {split} images without labels: only the test split may be "
            f"unlabelled; put them in {split_dir}/<class>/ folders"
        )
    raise DataFormatError(f"{split_dir} has no class folders ({split}/<class>/) and no labelled images")


def split_is_labelled(root, split: str) -> bool:
    """True if ``split`` of ``root`` has labels; False only for an unlabelled test split.

    Raises DataFormatError (naming the folder or file) if the split is missing or its labels are.
    """
    return split_layout(root, split) != "unlabelled"


def split_files(root, split: str, class_names: list[str]) -> tuple[list[Path], list[int]]:
    """Image paths and integer labels (index into ``class_names``) of one split.

    Official val (flat images + annotations) and class folders are both handled; the test
    split of the official zip has no labels, so its labels are -1 (see ``split_layout``).
    """
    root = Path(root)
    split_dir = root / split
    layout = split_layout(root, split)
    index = {c: i for i, c in enumerate(class_names)}
    files, labels = [], []
    if layout == "annotations":
        for a in sorted(read_val_annotations(root), key=lambda a: natural_key(a.file)):
            if a.wnid in index:
                files.append(split_dir / "images" / a.file)
                labels.append(index[a.wnid])
    elif layout == "unlabelled":
        files = list_images(split_dir / "images")
        labels = [-1] * len(files)
    else:
        for name in class_names:
            folder = class_image_dir(split_dir, name)
            if not folder.is_dir():
                raise DataFormatError(f"{folder} is missing: class {name!r} has no {split} images")
            found = list_images(folder)
            files += found
            labels += [index[name]] * len(found)
    return files, labels


def split_images(root) -> dict[str, tuple[list[Path], list[int]]]:
    """``{split: (files, labels)}`` for each of ``SPLITS`` that ``root`` has, in any layout the loader
    reads (the official one, ``reorganise``'s, ``subset``'s class folders, any ``<split>/<class>/``
    dataset); labels index ``dataset_classes(root)`` (-1: the unlabelled test split). Only the
    split's own images: reorganised copies beside them (``val/<wnid>/``, ``train_images/``) are not
    listed twice. Raises DataFormatError naming the first missing or malformed file or folder."""
    root = require_folder(root)
    classes = dataset_classes(root)
    if not (root / "train").is_dir():
        raise DataFormatError(f"{root / 'train'} is missing: every dataset needs train images")
    return {split: split_files(root, split, classes) for split in SPLITS if (root / split).is_dir()}


def check_layout(root, splits=None) -> dict[str, dict[str, int]]:
    """Check a dataset folder in any layout the loader reads; returns images per split and class
    counts. ``splits``: ``split_images(root)``, when the caller has it already.

    Raises DataFormatError naming the first missing or malformed file: every class needs train
    images, val needs its labels (``val_annotations.txt`` and the files it names, or class
    folders), and a ``words.txt`` that is there must name every wnid of ``wnids.txt``.
    """
    root = require_folder(root)
    classes = dataset_classes(root)
    if is_tiny_imagenet(root) and (root / "words.txt").is_file():
        words = read_words(root)
        missing_words = [w for w in classes if w not in words]
        if missing_words:
            raise DataFormatError(f"{root / 'words.txt'} has no names for {missing_words[:5]}")
    splits = split_images(root) if splits is None else splits
    summary = {}
    for split, (files, labels) in splits.items():
        if labels and labels[0] < 0:  # Tiny ImageNet's test images, without labels
            summary[split] = {"classes": 0, "images": len(files), "min_per_class": 0, "max_per_class": 0}
            continue
        counts = [0] * len(classes)
        for label in labels:
            counts[label] += 1
        if split == "train" and min(counts) == 0:
            empty = classes[counts.index(0)]
            raise DataFormatError(f"{class_image_dir(root / 'train', empty)} has no images")
        summary[split] = {
            "classes": sum(1 for c in counts if c),
            "images": len(files),
            "min_per_class": min(counts),
            "max_per_class": max(counts),
        }
    return summary
