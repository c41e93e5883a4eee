"""Where a training step's time goes: a preset's model and input pipeline on random uint8 data,
measured in one run and alternated (best of ``--rounds``).

    python benchmarks/bench_step.py [--preset tiny200] [--images 80000] [--batches 20] [--rounds 2]

  model only   fit on one batch held in memory (no input pipeline, no augmentation)
  pipeline     the training batches alone (shuffle, gather, augmentation), no model
  end to end   fit on the training batches, as ``train`` feeds them

The preset's own model (batch norm, dropout, preprocessing) in the precision ``--precision auto``
picks here, so "end to end / model only" is what the input pipeline costs the step.
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

from alexnet_tf.augment import fast_augmenter
from alexnet_tf.config import preset
from alexnet_tf.feed import training_batches
from alexnet_tf.hardware import choose_precision, describe_device, gpu_compute_capability
from alexnet_tf.model import MODELS, channel_stats


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny200")
    parser.add_argument("--images", type=int, default=80000, help="training images (random uint8)")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    config = preset(args.preset)
    device, _ = describe_device()
    precision = choose_precision(config.precision, gpu_compute_capability())
    keras.mixed_precision.set_global_policy(precision)
    print(f"{device}; --preset {args.preset}, precision {precision}, batch {config.batch_size}")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 64, 64, 3), dtype=np.uint8)
    one_hot = np.eye(args.classes, dtype="float32")[rng.integers(0, args.classes, args.images)]
    mean, variance = channel_stats(x[:4096])
    keras.utils.set_random_seed(0)
    model = MODELS[config.variant](config, args.classes, mean, variance)  # as train builds it
    model.compile(
        keras.optimizers.SGD(0.01, momentum=config.momentum),
        keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=False,
    )
    augment = fast_augmenter(config.augment, config.seed) if config.augmentation == "fast" else None
    batches = training_batches(x, one_hot, config.batch_size, config.seed, augment)
    one_batch = (x[: config.batch_size], one_hot[: config.batch_size])
    steps = args.batches
    images = steps * config.batch_size

    def model_only():
        import tensorflow as tf

        data = tf.data.Dataset.from_tensors(one_batch).repeat()
        model.fit(data, steps_per_epoch=2, verbose=0)
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, verbose=0)
        return images / (time.perf_counter() - start)

    def pipeline():
        iterator = iter(batches.repeat())
        next(iterator)
        start = time.perf_counter()
        for _ in range(steps):
            next(iterator)
        return images / (time.perf_counter() - start)

    def end_to_end():
        data = batches.repeat()
        model.fit(data, steps_per_epoch=2, verbose=0)
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, verbose=0)
        return images / (time.perf_counter() - start)

    measures = {"model only": model_only, "pipeline": pipeline, "end to end": end_to_end}
    best = best_of_alternating(list(measures), lambda name: measures[name](), args.rounds)
    print_ratio_table(["measured"], {(name,): value for name, value in best.items()})
    import resource

    print(
        f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB "
        f"({x.nbytes / 2**30:.2f} GB of uint8 images)"
    )


if __name__ == "__main__":
    main()
