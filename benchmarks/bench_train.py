"""Training benchmark: end-to-end training throughput of a preset on real Tiny-10 (the 10
alphabetically first classes), for a few epochs, under one or more settings alternated in one run.

    python benchmarks/bench_train.py [--zip PATH] [--preset default] [--epochs 3]
        [--settings "augmentation=fast;augmentation=none"] [--rounds 1]

images/s counts training images per second of fit time, validation passes included. Each
setting is a ';'-separated entry of comma-separated field=value overrides of the preset.
"""

import argparse
import tempfile
from pathlib import Path

from common import add_data_arguments, best_of_alternating, dataset, print_ratio_table

from alexnet_tf.cli import build_parser, config_from_args
from alexnet_tf.training import train


def config_for(preset_name, root, epochs, runs_dir, setting):
    """The preset with ``setting`` ("field=value,field=value") applied as the command line would."""
    args = [
        "train",
        "--preset",
        preset_name,
        "--data",
        str(root),
        "--classes",
        "10",
        "--epochs",
        str(epochs),
        "--runs-dir",
        str(runs_dir),
    ]
    for item in filter(None, setting.split(",")):
        field, _, value = item.partition("=")
        args += [f"--{field.strip().replace('_', '-')}", value.strip()]
    return config_from_args(build_parser().parse_args(args))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_data_arguments(parser)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--settings", default="", help="';'-separated settings to compare, e.g. 'augmentation=none'")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    settings = [(setting,) for setting in args.settings.split(";")]
    with tempfile.TemporaryDirectory() as work:
        root = dataset(args, work)
        runs = iter(range(len(settings) * args.rounds))

        def measure(setting):
            config = config_for(args.preset, root, args.epochs, Path(work) / f"runs-{next(runs)}", setting[0])
            m = train(config, verbose=0).metrics
            print(
                f"{setting[0] or args.preset}: {m['device']}, {m['precision']}: {m['train_images']} train images "
                f"x {m['epochs']} epochs in {m['fit_seconds']:.1f} s -> {m['images_per_second']:.0f} "
                f"training images/s; top-1 {m['top1_accuracy']:.3f}",
                flush=True,
            )
            return m["images_per_second"]

        best = best_of_alternating(settings, measure, args.rounds)
    print_ratio_table(["setting"], {(s or args.preset,): v for (s,), v in best.items()}, "training images/s")


if __name__ == "__main__":
    main()
