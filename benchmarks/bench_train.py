"""Training benchmark: CPU training throughput of the default configuration on real Tiny-10
(the 10 alphabetically first classes, all their train images), for a few epochs.

    python benchmarks/bench_train.py [--zip PATH] [--epochs 3]

images/s counts training images per second of fit time, validation passes included.
"""

import argparse
import tempfile
from pathlib import Path

from common import add_data_arguments, dataset

from alexnet_tf.config import preset  # noqa: E402
from alexnet_tf.training import train  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_data_arguments(parser)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = dataset(args, work)
        result = train(preset("default", data=str(root), classes=10, epochs=args.epochs,
                              runs_dir=str(Path(work) / "runs")), verbose=0)
        m = result.metrics
        print(f"{m['device']}: {m['train_images']} train images x {m['epochs']} epochs in {m['fit_seconds']:.1f} s "
              f"-> {m['images_per_second']:.0f} training images/s (validation included); "
              f"{m['fit_seconds'] / m['epochs']:.1f} s per epoch")


if __name__ == "__main__":
    main()
