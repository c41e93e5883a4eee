"""Reading the images of a dataset: which files a selection uses, decoding them into uint8
arrays, and the decode cache.

Images stay uint8 (N, H, W, 3) all the way to the model, which converts them itself:
80,000 Tiny ImageNet images are 0.98 GB as uint8 and would be 7.9 GB as float64.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from . import tiny_imagenet

log = logging.getLogger(__name__)

CACHE_FORMAT = 3  # bump when the cached arrays' meaning changes (2: 16-bit images scaled; 3: checksummed)


def default_cache_dir() -> Path:
    return Path(os.environ.get("ALEXNET_TF_CACHE", Path.home() / ".cache" / "alexnet_tf"))


def select_files(data_dir, split="train", classes=None, images_per_class=None, seed=None):
    """The exact files a selection uses: ``(files, labels, class_names)``.

    ``classes``: None (all), an int N (alphabetically first N) or a list of class names.
    ``images_per_class``: the first M files of each class in natural order, or a seeded
    random M when ``seed`` is given. Raises if the selection is empty or a class has fewer than M images.
    Labels are -1 only for an unlabelled test split (``tiny_imagenet.split_is_labelled``); a
    split whose labels are missing is an error, never a split of placeholder labels.
    """
    data_dir = Path(data_dir)
    class_names = tiny_imagenet.resolve_classes(data_dir, classes)
    files, labels = tiny_imagenet.split_files(data_dir, split, class_names)
    if not files:
        raise tiny_imagenet.DataFormatError(f"{data_dir / split} has no images for classes {class_names[:5]}")
    if labels[0] >= 0:
        require_every_class(labels, class_names, data_dir / split)
    if images_per_class is not None:
        if images_per_class < 1:
            raise ValueError(f"images_per_class={images_per_class} must be at least 1")
        if labels[0] < 0:
            raise ValueError(f"images_per_class needs labels, and {data_dir / split} is unlabelled; leave it None")
        files, labels = _take_per_class(files, labels, class_names, images_per_class, seed, split)
    return files, np.asarray(labels, dtype=np.int32), class_names


def require_every_class(labels, class_names, where) -> None:
    """A one-line error naming the classes of ``class_names`` that have no image in ``labels``:
    a class never seen in training, or never scored, would make every figure of the run wrong."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    missing = [name for name, count in zip(class_names, counts) if count == 0]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise tiny_imagenet.DataFormatError(
            f"{where} has no images of {len(missing)} selected class(es): {shown}; restore their images or leave "
            f"them out of --classes"
        )


def _take_per_class(files, labels, class_names, m, seed, split):
    rng = np.random.default_rng(seed)
    by_class = {}
    for f, y in zip(files, labels):
        by_class.setdefault(y, []).append(f)
    out_files, out_labels = [], []
    for y in sorted(by_class):
        members = by_class[y]
        if len(members) < m:
            raise ValueError(
                f"images_per_class={m} but class {class_names[y]!r} has only {len(members)} {split} "
                f"images; choose images_per_class <= {min(len(v) for v in by_class.values())}"
            )
        chosen = members[:m] if seed is None else [members[i] for i in sorted(rng.permutation(len(members))[:m])]
        out_files += chosen
        out_labels += [y] * m
    return out_files, out_labels


# Integer grayscale modes PIL opens 16-bit PNGs as; convert("RGB") would clip them to 0..255
# (nearly all white), so they are scaled to 8 bits first.
_WIDE_GRAY_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


def _to_8bit_gray(img, path) -> Image.Image:
    values = np.asarray(img)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise tiny_imagenet.DataFormatError(
            f"cannot decode image {path}: mode {img.mode} values span {values.min()}..{values.max()}, "
            f"not 16-bit grayscale. Convert it to 8-bit RGB or remove this file."
        )
    return Image.fromarray(((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))


def decode_image(path, image_size=64) -> np.ndarray:
    """One image file -> uint8 (image_size, image_size, 3); grayscale becomes RGB.

    16-bit grayscale is scaled to 8 bits; float images (mode "F") have no agreed 0..255
    meaning and are refused with a DataFormatError naming the file.
    """
    try:
        with Image.open(path) as img:
            if img.mode == "F":
                raise tiny_imagenet.DataFormatError(
                    f"cannot decode image {path}: floating-point pixels (mode F) have no 8-bit meaning. "
                    f"Convert it to 8-bit RGB or remove this file."
                )
            if img.mode in _WIDE_GRAY_MODES:
                img = _to_8bit_gray(img, path)
            if img.mode != "RGB":
                img = img.convert("RGB")
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except tiny_imagenet.DataFormatError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise tiny_imagenet.DataFormatError(
            f"cannot decode image {path}: {err}. Re-extract the dataset or remove this file."
        ) from None


def _decode_chunk(files, image_size):
    return np.stack([decode_image(f, image_size) for f in files]) if files else None


def map_file_chunks(function, files, workers=None, chunk=2000):
    """``function(list of paths)`` over ``files`` in chunks, results in order, in parallel processes
    for large lists.

    Processes, not threads: decoding a 64x64 JPEG is so quick that PIL's Python overhead
    holds the GIL most of the time, and threads run slower than one. "fork" workers only
    run PIL and numpy, and do not re-run the caller's script as spawned ones would.
    """
    import multiprocessing

    files = [str(f) for f in files]
    chunks = [files[s : s + chunk] for s in range(0, len(files), chunk)]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(files) < 4000 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(function, chunks)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(function, chunks)


def decode_images(files, image_size=64, workers=None) -> np.ndarray:
    """Decode many files into one uint8 array, in parallel processes for large lists."""
    out = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    start = 0
    for block in map_file_chunks(partial(_decode_chunk, image_size=image_size), files, workers):
        out[start : start + len(block)] = block
        start += len(block)
    return out


def _cache_key(files, image_size) -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{image_size}".encode())
    for f in files:
        st = os.stat(f)
        digest.update(f"{os.path.abspath(f)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def load_dataset(
    data_dir,
    split="train",
    classes=None,
    images_per_class=None,
    image_size=64,
    seed=None,
    cache=True,
    cache_dir=None,
    workers=None,
):
    """Load one split as ``(images, labels, class_names)``.

    images: uint8 (N, image_size, image_size, 3); labels: int32 (N,) indexing class_names
    (sorted class names, e.g. wnids). Works on the official Tiny ImageNet layout, on
    reorganised folders and on any ``<root>/<split>/<class>/*.jpg`` dataset.

    Decoded arrays are cached under ``cache_dir`` (default ``$ALEXNET_TF_CACHE`` or
    ``~/.cache/alexnet_tf``), keyed by the exact files, their sizes and times, and the image
    size, so a second load of the same selection is a plain read of a .npy file.
    """
    files, labels, class_names = select_files(data_dir, split, classes, images_per_class, seed)
    return load_images(files, image_size, cache, cache_dir, workers), labels, class_names


def load_images(files, image_size=64, cache=True, cache_dir=None, workers=None) -> np.ndarray:
    """Decode ``files`` (e.g. from ``select_files``) into uint8 arrays, through the cache.

    A cache entry that does not match its own checksum and key (a truncated or damaged file)
    is discarded and rebuilt, with a one-line notice naming it."""
    if not cache:
        return decode_images(files, image_size, workers)
    key = _cache_key(files, image_size)
    entry = Path(cache_dir or default_cache_dir()) / f"{len(files)}-{key}"
    if entry.is_dir():
        try:
            return _read_cache(entry, key)
        except (OSError, ValueError, EOFError) as err:
            log.warning("the dataset cache entry %s is damaged (%s): rebuilding it", entry, err)
            shutil.rmtree(entry, ignore_errors=True)
    images = decode_images(files, image_size, workers)
    _write_cache(entry, images, files, key)
    return images


def _checksum(images: np.ndarray) -> str:
    return hashlib.blake2b(memoryview(np.ascontiguousarray(images)).cast("B"), digest_size=16).hexdigest()


def _read_cache(entry: Path, key: str) -> np.ndarray:
    """The entry's array, once its metadata, shape and checksum say it is the one written for ``key``."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"meta.json is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("key") != key or "checksum" not in meta:
        raise ValueError("meta.json does not describe this selection")
    images = np.load(entry / "images.npy", allow_pickle=False)
    if list(images.shape) != meta.get("shape") or images.dtype != np.uint8:
        raise ValueError(f"images.npy holds {images.dtype} {list(images.shape)}, not uint8 {meta.get('shape')}")
    if _checksum(images) != meta["checksum"]:
        raise ValueError("images.npy does not match its checksum")
    return images


def _write_cache(entry: Path, images, files, key):
    """Write the arrays under a temporary name and rename: readers see a complete entry or none,
    and when two processes cache the same selection the second simply drops its copy."""
    tmp = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        np.save(tmp / "images.npy", images)
        (tmp / "meta.json").write_text(
            json.dumps(
                {"key": key, "first_file": str(files[0]), "shape": list(images.shape), "checksum": _checksum(images)}
            )
        )
        tmp.rename(entry)
    except OSError as err:
        if not (entry / "images.npy").is_file():  # not just another process caching the same selection first
            log.warning("could not write the dataset cache at %s (%s); loading works, only uncached", entry, err)
    finally:
        if tmp is not None and tmp.exists():  # a failed or lost rename leaves no half-written entry
            shutil.rmtree(tmp, ignore_errors=True)


def class_descriptions(data_dir, class_names) -> list[str]:
    """Human-readable names (from words.txt) for class names / wnids; the name itself if unknown."""
    words = tiny_imagenet.read_words(data_dir, class_names)
    return [words[c].split(",")[0] for c in class_names]


def channel_stats(images, chunk=4096):
    """Per-channel mean and variance of uint8 images, in chunks (no float copy of the whole set)."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].reshape(-1, images.shape[-1]).astype(np.float64)
        total += block.sum(0)
        total_sq += np.square(block).sum(0)
    count = len(images) * images.shape[1] * images.shape[2]
    mean = total / count
    return mean, total_sq / count - mean**2


def image_statistics(images, chunk=4096) -> dict:
    """Per-channel pixel mean and std (0-255) and the share of grayscale images (R == G == B)."""
    mean, variance = channel_stats(images, chunk)
    gray = sum(
        int(np.sum(np.all(block[..., :1] == block[..., 1:], axis=(1, 2, 3))))
        for block in (images[s : s + chunk] for s in range(0, len(images), chunk))
    )
    return {
        "mean": [round(float(v), 2) for v in mean],
        "std": [round(float(v), 2) for v in np.sqrt(variance)],
        "grayscale_share": gray / len(images),
        "images": len(images),
    }
