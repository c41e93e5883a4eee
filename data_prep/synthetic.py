"""A small synthetic dataset in the exact Tiny ImageNet layout.

Ten procedural classes (shapes and textures in random colours, sizes and places, with
noise) that a small CNN learns in minutes. It is the quickstart's default data and the
tests' fixture on machines without the real zip. Every wnid starts with "synth" and every
name with "synthetic", so it is never mistaken for ImageNet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .fsutil import atomic_dir, make_folder, remove_stale_temps, save_image, write_text_atomically

PATTERNS = [
    "circle",
    "square",
    "triangle",
    "ring",
    "cross",
    "horizontal stripes",
    "vertical stripes",
    "checkerboard",
    "diagonal stripes",
    "dots",
]


def _colours(rng):
    fg = rng.integers(0, 256, 3)
    bg = rng.integers(0, 256, 3)
    while np.abs(fg.astype(int) - bg).sum() < 200:  # keep the pattern visible
        bg = rng.integers(0, 256, 3)
    return tuple(int(v) for v in fg), tuple(int(v) for v in bg)


def draw_pattern(pattern: str, rng, size=64) -> Image.Image:
    fg, bg = _colours(rng)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    r = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    period = int(rng.integers(6, 14))
    if pattern == "circle":
        d.ellipse(box, fill=fg)
    elif pattern == "square":
        d.rectangle(box, fill=fg)
    elif pattern == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif pattern == "ring":
        d.ellipse(box, outline=fg, width=max(2, r // 4))
    elif pattern == "cross":
        w = max(2, r // 3)
        d.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fg)
        d.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fg)
    elif pattern == "horizontal stripes":
        for y in range(int(rng.integers(0, period)), size, period):
            d.rectangle((0, y, size, y + period // 2 - 1), fill=fg)
    elif pattern == "vertical stripes":
        for x in range(int(rng.integers(0, period)), size, period):
            d.rectangle((x, 0, x + period // 2 - 1, size), fill=fg)
    elif pattern == "checkerboard":
        for y in range(0, size, period):
            for x in range(0, size, period):
                if (x // period + y // period) % 2 == 0:
                    d.rectangle((x, y, x + period - 1, y + period - 1), fill=fg)
    elif pattern == "diagonal stripes":
        for k in range(-size, size, period):
            d.line((k, 0, k + size, size), fill=fg, width=period // 2)
    elif pattern == "dots":
        for y in range(period // 2, size, period):
            for x in range(period // 2, size, period):
                d.ellipse((x - 2, y - 2, x + 2, y + 2), fill=fg)
    else:
        raise ValueError(f"unknown pattern {pattern!r}; choose from {PATTERNS}")
    pixels = np.asarray(img, dtype=np.int16) + rng.normal(0, 12, (size, size, 3)).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), box


def make_synthetic(
    out_dir,
    classes=10,
    train_per_class=200,
    val_per_class=50,
    test_images=50,
    image_size=64,
    grayscale_fraction=0.02,
    seed=0,
) -> Path:
    """Write ``<out_dir>/synthetic-tiny-imagenet`` (if absent) and return its path.

    Two processes asking for it at once both get the one finished folder."""
    if not 1 <= classes <= len(PATTERNS):
        raise ValueError(f"classes={classes}: the synthetic set has 1..{len(PATTERNS)} classes")
    if train_per_class < 1 or val_per_class < 0 or test_images < 0:
        raise ValueError(
            f"train_per_class={train_per_class}, val_per_class={val_per_class}, "
            f"test_images={test_images}: need at least 1 train image per class and no negative counts"
        )
    root = Path(out_dir) / "synthetic-tiny-imagenet"
    remove_stale_temps(root.parent)  # what an interrupted run left, even if another finished since
    if (root / "wnids.txt").is_file():
        return root
    wnids = [f"synth{i:04d}" for i in range(classes)]
    rng = np.random.default_rng(seed)

    def save(path: Path, pattern: str):
        img, box = draw_pattern(pattern, rng, image_size)
        if rng.random() < grayscale_fraction:  # like the real data, a few images are grayscale
            img = img.convert("L")
        save_image(img, path, quality=90)
        return box

    with atomic_dir(root, exist_ok=True) as tmp:  # another process may finish it first
        # Shuffled like the official wnids.txt, which is not sorted either.
        write_text_atomically(tmp / "wnids.txt", "".join(f"{w}\n" for w in rng.permutation(wnids)))
        write_text_atomically(tmp / "words.txt", "".join(f"{w}\tsynthetic {p}\n" for w, p in zip(wnids, PATTERNS)))
        for wnid, pattern in zip(wnids, PATTERNS):
            images = tmp / "train" / wnid / "images"
            make_folder(images)
            boxes = []
            for n in range(train_per_class):
                name = f"{wnid}_{n}.JPEG"
                boxes.append(f"{name}\t" + "\t".join(map(str, save(images / name, pattern))) + "\n")
            write_text_atomically(tmp / "train" / wnid / f"{wnid}_boxes.txt", "".join(boxes))
        make_folder(tmp / "val" / "images")
        labels = rng.permutation(np.repeat(np.arange(classes), val_per_class))
        lines = []
        for n, y in enumerate(labels):
            name = f"val_{n}.JPEG"
            box = save(tmp / "val" / "images" / name, PATTERNS[y])
            lines.append(f"{name}\t{wnids[y]}\t" + "\t".join(map(str, box)) + "\n")
        write_text_atomically(tmp / "val" / "val_annotations.txt", "".join(lines))
        make_folder(tmp / "test" / "images")
        for n in range(test_images):
            save(tmp / "test" / "images" / f"test_{n}.JPEG", PATTERNS[int(rng.integers(classes))])
    if not (root / "wnids.txt").is_file():  # the rename found a folder there that is not ours
        raise FileExistsError(f"{root} exists but is not a synthetic dataset; move it aside and run again")
    return root
