"""The two augmentation paths side by side, for notebook 3 and ``benchmarks/bench_augment.py``:
batches from each, their throughput, and a figure of both on the same images."""

from __future__ import annotations

import numpy as np

from data_prep import fsutil

from .augment import fast_augmenter, image_data_generator
from .config import AugmentConfig


def augmented_batches(images, labels, path="fast", config: AugmentConfig = AugmentConfig(), batch_size=128, seed=None):
    """An endless iterator-like source of augmented batches from uint8 arrays, by either path.

    ``path="classic"``: ``ImageDataGenerator.flow``; ``path="fast"``: ``tf.data`` with ``fast_augmenter``.
    """
    if path == "classic":
        return image_data_generator(config, seed).flow(images, labels, batch_size=batch_size, shuffle=True, seed=seed)
    if path == "fast":
        from .feed import make_dataset

        return make_dataset(
            images, labels, batch_size, shuffle=True, seed=seed, augment=fast_augmenter(config, seed)
        ).repeat()
    raise ValueError(f"unknown augmentation path {path!r}; choose fast or classic")


def compare_throughput(
    images,
    labels,
    config: AugmentConfig = AugmentConfig(),
    batch_size=128,
    classic_batches=40,
    fast_batches=400,
    repeats=2,
) -> dict:
    """Augmented images/s of both paths on the same arrays, alternated ``repeats`` times (best of each)."""
    import time

    def rate(batches, count, warmup=3):
        it = iter(batches)
        for _ in range(warmup):
            next(it)
        n, start = 0, time.perf_counter()
        for _ in range(count):
            n += len(next(it)[0])
        return n / (time.perf_counter() - start)

    classic, fast = [], []
    for _ in range(repeats):  # alternate, so drift in the machine's speed hits both alike
        classic.append(rate(augmented_batches(images, labels, "classic", config, batch_size, 0), classic_batches))
        fast.append(rate(augmented_batches(images, labels, "fast", config, batch_size, 0), fast_batches))
    return {"classic_images_per_s": max(classic), "fast_images_per_s": max(fast), "ratio": max(fast) / max(classic)}


def augmentation_figure(images, config: AugmentConfig = AugmentConfig(), samples=4, seed=0, path=None):
    """A grid: each row one image, then ``samples`` versions from each path. Returns the figure."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    classic = image_data_generator(config, seed)
    fast = fast_augmenter(config, seed)
    columns = 1 + 2 * samples
    fig, axes = plt.subplots(len(images), columns, figsize=(columns * 1.1, len(images) * 1.2), squeeze=False)
    for row, image in enumerate(images):
        fast_out = np.asarray(fast(np.repeat(image[None], samples, 0), training=True))
        views = [image] + [classic.random_transform(image.astype("float32"), seed=seed + i) for i in range(samples)]
        views += list(fast_out)
        for col, (ax, view) in enumerate(zip(axes[row], views)):
            ax.imshow(np.clip(view, 0, 255).astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(
                    "original"
                    if col == 0
                    else ("ImageDataGenerator" if col == 1 else ("fast path" if col == samples + 1 else "")),
                    fontsize=7,
                    loc="left",
                )
    fig.tight_layout()
    if path is not None:
        fsutil.save_figure(fig, path, dpi=110)
    return fig
