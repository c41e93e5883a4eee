"""Backend benchmark: training images/s of the ``tiny`` model (200 classes, batch 128, random uint8
data, SGD, no augmentation) on each Keras backend, fed as training feeds it (``tf.data`` on
TensorFlow, ``ArrayBatches`` elsewhere: ``alexnet_tf.feed.training_batches``),
each in its own process (a backend is chosen at import), alternated over ``--rounds`` (best of each).

    python benchmarks/bench_backends.py [--batches 6] [--rounds 2] [--no-lrn] [--augment none,affine,keras]
        [--backends tensorflow,tensorflow-xla,jax,jax-eager,torch]

"-xla" turns TensorFlow's XLA on; "-eager" runs JAX's step without jit (what jit_compile=False does).
``--augment`` puts augmentation first in the model, as JAX and PyTorch train: "affine" is the
project's ``RandomAffine`` (one warp for all transforms), "keras" the same transforms as Keras 3's
preprocessing layers (RandomFlip, RandomTranslation, RandomZoom, RandomRotation, RandomShear).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import time

from common import best_of_alternating, print_ratio_table


def augmentation_layer(kind):
    """The default AugmentConfig's transforms (flip, shifts 0.2, zoom 0.2, rotation 20 and shear 0.2
    degrees, nearest fill) as one of the implementations compared."""
    import keras

    from alexnet_tf.augment import AugmentConfig, degrees_to_turns, fast_augmenter

    if kind == "none":
        return None
    if kind == "affine":
        return fast_augmenter(AugmentConfig(), seed=0)
    c = AugmentConfig()
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=0),
            keras.layers.RandomTranslation(c.height_shift, c.width_shift, fill_mode=c.fill_mode, seed=0),
            keras.layers.RandomZoom((-c.zoom, c.zoom), (-c.zoom, c.zoom), fill_mode=c.fill_mode, seed=0),
            keras.layers.RandomRotation(degrees_to_turns(c.rotation_degrees), fill_mode=c.fill_mode, seed=0),
            keras.layers.RandomShear(x_factor=c.shear_degrees / 45, fill_mode=c.fill_mode, seed=0),
        ],
        name="keras_layers",
    )


def measure(backend, jit, batches, batch_size, lrn=True, augment="none"):
    """One backend in this process: images/s of ``batches`` training steps after a warm-up epoch."""
    import keras
    import numpy as np

    from alexnet_tf.feed import training_batches

    keras.utils.set_random_seed(0)
    from alexnet_tf.model import alexnet_model

    rng = np.random.default_rng(0)
    n = batch_size * batches
    x = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = np.eye(200, dtype="float32")[rng.integers(0, 200, n)]
    model = alexnet_model(num_classes=200, lrn=lrn, augmentation=augmentation_layer(augment))
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "categorical_crossentropy", jit_compile=jit)
    data = training_batches(x, y, batch_size)
    model.fit(data, epochs=1, steps_per_epoch=batches, verbose=0)  # compile, warm up
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=batches, verbose=0)
    return n / (time.perf_counter() - start)


def backend_of(name):
    return name.removesuffix("-xla").removesuffix("-eager")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="tensorflow,tensorflow-xla,jax,jax-eager,torch")
    parser.add_argument("--no-lrn", action="store_true", help="the model without its LRN layers")
    parser.add_argument("--augment", default="none", help="none, affine and/or keras, comma-separated")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one backend
    args = parser.parse_args()
    if args.one:
        backend = backend_of(args.one)
        jit = args.one.endswith("-xla") if backend == "tensorflow" else not args.one.endswith("-eager")
        print(measure(backend, jit, args.batches, args.batch_size, not args.no_lrn, args.augment))
        return
    names = [b for b in args.backends.split(",") if importlib.util.find_spec(backend_of(b))]
    settings = [(name, augment) for name in names for augment in args.augment.split(",")]

    def measure_in_a_process(setting):
        name, augment = setting
        env = {**os.environ, "KERAS_BACKEND": backend_of(name), "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                name,
                "--augment",
                augment,
                "--batches",
                str(args.batches),
                "--batch-size",
                str(args.batch_size),
            ]
            + (["--no-lrn"] if args.no_lrn else []),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if out.returncode:
            sys.exit(f"{name} with augment={augment} failed:\n{out.stderr[-3000:]}")
        return float(out.stdout.strip().splitlines()[-1])

    print_ratio_table(["backend", "augmentation"], best_of_alternating(settings, measure_in_a_process, args.rounds))


if __name__ == "__main__":
    main()
