"""Model benchmark: parameters and multiply-accumulates per image of each variant, and CPU
training throughput of "tiny" against the seed's construction (the same network with
``Lambda(tf.nn.local_response_normalization)`` layers), measured in one run.

    python benchmarks/bench_model.py [--batches 12]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np
import tensorflow as tf

from alexnet_tf.model import VARIANTS, LocalResponseNormalization, alexnet_model, count_macs


def seed_construction(model):
    """The same network, its LRN layers swapped for the seed's Lambda(tf.nn.local_response_normalization)."""

    def swap(layer):
        if isinstance(layer, LocalResponseNormalization):
            r, k, a, b = layer.depth_radius, layer.bias, layer.alpha, layer.beta
            return keras.layers.Lambda(lambda x: tf.nn.local_response_normalization(x, r, k, a, b), name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=swap)


def images_per_second(model, x, y, batch_size, batches):
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    model.fit(x[: batch_size * 2], y[: batch_size * 2], batch_size=batch_size, verbose=0)  # compile, warm up
    n = batch_size * batches
    start = time.perf_counter()
    model.fit(x[:n], y[:n], batch_size=batch_size, verbose=0)
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    print("variant   input  classes  parameters  MACs/image")
    for variant, classes in (("tiny", 200), ("mini", 200), ("original", 1000)):
        m = alexnet_model(num_classes=classes, variant=variant)
        size = VARIANTS[variant]["input_size"]
        print(f"{variant:<9} {size:>5} {classes:>8} {m.count_params():>11,} {count_macs(m):>11,}")

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = args.batch_size * args.batches
    x = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = rng.integers(0, 200, n)
    ours = alexnet_model(num_classes=200)
    seed = seed_construction(alexnet_model(num_classes=200))
    results = {}
    for _ in range(2):  # alternate, so drift in the machine's speed hits both alike
        for name, model in (("keras.ops LRN layer", ours), ("Lambda(tf.nn.lrn)", seed)):
            results.setdefault(name, []).append(images_per_second(model, x, y, args.batch_size, args.batches))
    best = {k: max(v) for k, v in results.items()}
    for name, value in best.items():
        print(f"tiny, CPU training, batch {args.batch_size}, {name:<20}: {value:7.1f} images/s")
    print(f"ratio (ours / seed construction): {best['keras.ops LRN layer'] / best['Lambda(tf.nn.lrn)']:.2f}x")


if __name__ == "__main__":
    main()
