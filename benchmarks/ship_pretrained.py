"""Ship a finished run's network: its weights as float16 (``<name>.weights.npz``) and its record
(``<name>.json``), written into ``--out`` (``alexnet_tf/weights`` for the network the project
ships), then scored as shipped on ``--split`` of ``--data`` with the flip averaging the run used.
The record holds both scores, the run's and the shipped file's (see ``alexnet_tf/shipped.py``).

    python benchmarks/ship_pretrained.py RUN_DIR --name tiny200 --data data/tiny-imagenet-200 \\
        --out alexnet_tf/weights --command "python -m alexnet_tf train --preset tiny200 ..."
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alexnet_tf.hardware import quiet_tensorflow_logs

quiet_tensorflow_logs()

from alexnet_tf.run_folder import RunFolder
from alexnet_tf.saved_run import score_network
from alexnet_tf.shipped import network, weights_arrays
from data_prep import fsutil
from data_prep.fsutil import file_sha256

SCORES = ("top1_accuracy", "top5_accuracy", "images")


def ship(run_dir, name: str, data, out, command: str, split: str = "val") -> dict:
    """Write ``name``'s weights file and record into the folder ``out`` (neither may exist yet)
    from the finished run at ``run_dir``; return the record."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"--out {out}: the folder does not exist; create it first")
    run = RunFolder.open_finished(run_dir)
    weights = out / f"{name}.weights.npz"
    fsutil.refuse_existing(out / f"{name}.json", "choose another --name, or move that file away first")
    fsutil.save_arrays(weights, weights_arrays(run.model), new=True)
    normalize = run.model.get_layer("normalize").get_config()
    metrics = run.folder.metrics()
    record = {
        "name": name,
        "file": weights.name,
        "sha256": file_sha256(weights),
        "bytes": weights.stat().st_size,
        "dtype": "float16",
        "input_shape": list(run.model.input_shape[1:]),
        "classes": [list(c) for c in run.classes],
        "mean": [float(v) for v in normalize["mean"]],
        "variance": [float(v) for v in normalize["variance"]],
        "config": asdict(run.config),
        "trained_on": f"Tiny ImageNet's train split: {metrics.get('train_images')} images of {len(run.classes)} classes",
        "command": command,
        "run": run.path.name,
        "code": metrics.get("code"),
        "run_scores": {"split": metrics.get("split", "val"), **{k: metrics.get(k) for k in SCORES}},
    }
    shipped = score_network(network(name, record, weights), data, split)
    record["shipped_scores"] = {"split": split, **{k: shipped[k] for k in SCORES}}
    fsutil.write_text_atomically(out / f"{name}.json", json.dumps(record, indent=1) + "\n", new=True)
    return record


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
