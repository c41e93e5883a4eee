"""Augmentation benchmark: augmented images/s of ImageDataGenerator.flow and of the fast path
(tf.data + RandomAffine) on the real train split, 64x64, batch 128, the same transforms,
measured in one run.

    python benchmarks/bench_augment.py [--zip PATH]
"""

import argparse
import tempfile

from common import add_data_arguments, dataset

from alexnet_tf.augment import AugmentConfig
from alexnet_tf.augment_compare import compare_throughput
from alexnet_tf.data import load_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_data_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = dataset(args, work)
        x, y, _ = load_dataset(root, "train")
        print(f"train split: {x.shape} {x.dtype}")
        config = AugmentConfig()
        result = compare_throughput(x, y, config, batch_size=128)
        print(f"ImageDataGenerator.flow: {result['classic_images_per_s']:9.0f} images/s")
        print(f"fast path (tf.data):     {result['fast_images_per_s']:9.0f} images/s")
        print(f"ratio: {result['ratio']:.1f}x")


if __name__ == "__main__":
    main()
