"""Ship a finished run's network: its weights as float16 (``<name>.weights.npz``) and its record
(``<name>.json``), written into ``--out`` (``alexnet_tf/weights`` for the network the project
ships), then scored as shipped on ``--split`` of ``--data`` with the flip averaging the run used
(``alexnet_tf.saved_run.ship``). The record holds both scores, the run's and the shipped file's
(see ``alexnet_tf/shipped.py``).

    python benchmarks/ship_pretrained.py RUN_DIR --name tiny200 --data data/tiny-imagenet-200 \\
        --out alexnet_tf/weights --command "python -m alexnet_tf train --preset tiny200 ..."
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alexnet_tf.hardware import quiet_tensorflow_logs

quiet_tensorflow_logs()

from alexnet_tf.saved_run import ship


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a finished run folder")
    parser.add_argument("--name", required=True, help="the network's name, as alexnet_tf.pretrained(NAME) takes it")
    parser.add_argument("--data", required=True, help="the dataset folder to score the shipped file on")
    parser.add_argument("--out", required=True, help="the folder to write into (alexnet_tf/weights to ship it)")
    parser.add_argument("--command", required=True, help="the command that trained the run, for the record")
    parser.add_argument("--split", default="val", help="the split to score on (default: val)")
    args = parser.parse_args()
    record = ship(args.run_dir, args.name, args.data, args.out, args.command, args.split)
    run, shipped = record["run_scores"], record["shipped_scores"]
    print(f"{args.out}/{record['file']}: {record['bytes'] / 2**20:.1f} MiB, sha256 {record['sha256']}")
    print(f"run:     top-1 {run['top1_accuracy']:.4f}, top-5 {run['top5_accuracy']:.4f} on {run['images']} images")
    print(f"shipped: top-1 {shipped['top1_accuracy']:.4f}, top-5 {shipped['top5_accuracy']:.4f} on {shipped['images']}")


if __name__ == "__main__":
    main()
