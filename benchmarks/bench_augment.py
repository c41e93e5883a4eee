"""Augmentation benchmark: augmented images/s of ImageDataGenerator.flow and of the fast path
(tf.data + RandomAffine) on the real train split, 64x64, batch 128, the same transforms,
measured in one run. Also writes figures/augmentation_real.png.

    python benchmarks/bench_augment.py [--zip PATH]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alexnet_tf.augment import AugmentConfig, augmentation_figure, compare_throughput  # noqa: E402
from alexnet_tf.data import load_dataset  # noqa: E402
from data_prep import extract  # noqa: E402

DEFAULT_ZIP = REPO.parent / "shared" / "data" / "tiny-imagenet-200.zip"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zip", default=os.environ.get("TINY_IMAGENET_ZIP", DEFAULT_ZIP))
    parser.add_argument("--data", default=None, help="an extracted Tiny ImageNet folder instead of --zip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(args.data) if args.data else extract(args.zip, work)
        x, y, _ = load_dataset(root, "train")
        print(f"train split: {x.shape} {x.dtype}")
        config = AugmentConfig()
        result = compare_throughput(x, y, config, batch_size=128)
        print(f"ImageDataGenerator.flow: {result['classic_images_per_s']:9.0f} images/s")
        print(f"fast path (tf.data):     {result['fast_images_per_s']:9.0f} images/s")
        print(f"ratio: {result['ratio']:.1f}x")
        augmentation_figure(x[[0, 4000, 32000, 60000]], config, samples=4, path=REPO / "figures" / "augmentation_real.png")
        print("wrote figures/augmentation_real.png")


if __name__ == "__main__":
    main()
