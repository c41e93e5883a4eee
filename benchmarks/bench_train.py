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

from common import add_data_arguments, dataset

from alexnet_tf.cli import build_parser, config_from_args  # noqa: E402
from alexnet_tf.training import train  # noqa: E402


def config_for(preset_name, root, epochs, runs_dir, setting):
    """The preset with ``setting`` ("field=value,field=value") applied as the command line would."""
    args = ["train", "--preset", preset_name, "--data", str(root), "--classes", "10", "--epochs", str(epochs),
            "--runs-dir", str(runs_dir)]
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
    settings = args.settings.split(";")
    best = {}
    with tempfile.TemporaryDirectory() as work:
        root = dataset(args, work)
        for round_ in range(args.rounds):  # alternate, so drift in the machine's speed hits every setting alike
            for i, setting in enumerate(settings):
                config = config_for(args.preset, root, args.epochs, Path(work) / f"runs-{round_}-{i}", setting)
                m = train(config, verbose=0).metrics
                best[setting] = max(best.get(setting, 0), m["images_per_second"])
                print(f"{setting or args.preset}: {m['device']}, {m['precision']}: {m['train_images']} train images "
                      f"x {m['epochs']} epochs in {m['fit_seconds']:.1f} s -> {m['images_per_second']:.0f} "
                      f"training images/s; top-1 {m['top1_accuracy']:.3f}", flush=True)
    base = best[settings[0]]
    print(f"| setting | training images/s | vs {settings[0] or args.preset} |\n|---|---|---|")
    for setting, rate in best.items():
        print(f"| {setting or args.preset} | {rate:.0f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
