"""Precision and XLA benchmark: training images/s of the ``tiny`` model (200 classes, batch 128,
random uint8 data, SGD) under each precision, with ``jit_compile`` off and on, alternated in one
run (best of ``--rounds`` each), and what ``--precision auto`` picks on this machine.

    python benchmarks/bench_precision.py [--batches 8] [--rounds 2] [--precisions float32,mixed_bfloat16]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import best_of_alternating, print_ratio_table

from alexnet_tf.hardware import quiet_tensorflow_logs

quiet_tensorflow_logs()

import keras
import numpy as np

from alexnet_tf.hardware import choose_precision, describe_device, gpu_compute_capability
from alexnet_tf.model import alexnet_model


def images_per_second(precision, jit, x, y, batch_size):
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = alexnet_model(num_classes=200)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy", jit_compile=jit)
        model.fit(x[: batch_size * 2], y[: batch_size * 2], batch_size=batch_size, verbose=0)  # compile, warm up
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, verbose=0)
        return len(x) / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    args = parser.parse_args()

    device, _ = describe_device()
    print(f"{device}; --precision auto picks {choose_precision('auto', gpu_compute_capability())}")
    rng = np.random.default_rng(0)
    n = args.batch_size * args.batches
    x = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = rng.integers(0, 200, n)
    settings = [(p, jit) for p in args.precisions.split(",") for jit in ("off", "on")]
    best = best_of_alternating(
        settings, lambda s: images_per_second(s[0], s[1] == "on", x, y, args.batch_size), args.rounds
    )
    print_ratio_table(["precision", "jit_compile"], best)


if __name__ == "__main__":
    main()
