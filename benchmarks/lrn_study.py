"""What Local Response Normalization buys: LRN on and off, with batch norm (our recipe) and without
it (the paper's setting), on paired seeds, on a proxy large enough to see a one-point effect.

    python benchmarks/lrn_study.py data --source data/tiny-imagenet-200   # the proxy's folder, once
    python benchmarks/lrn_study.py run [NAME ...]     # every missing run in order (or those named)
    python benchmarks/lrn_study.py table              # the effects, from the finished runs' records
    python benchmarks/lrn_study.py commands [NAME ...]  # each run's train command

The proxy: 100 classes drawn with seed 0, each class's 400 train images split 300 for training and
100 held out (``data_prep subset --split 300/100/0``): 10,000 held-out images, about 0.5 points of
sampling error on one accuracy figure; the official val images stay unused. 15 epochs, one warm-up
epoch then cosine decay to zero, mixed_bfloat16 on every machine (a pair of runs never mixes two
precisions).

The four arms:
  a  ``tiny200-v1``'s recipe as it is: batch norm and LRN
  b  a without LRN
  c  the paper's setting: no batch norm, LRN, dropout 0.5, at the optimiser and learning rate the
     sweep chose (SWEEP, CHOSEN)
  d  c without LRN

Arms on the same seed start from the same initial weights (LRN has none, so the layers draw their
initial values in the same order; tests/test_lrn_study.py checks it) and see the same data order and
augmentation draws (seeded by the run's seed alone). The sweep judges each setting of c and d by the
mean of the two on seed SWEEP_SEED, which the study itself does not use, so the choice favours
neither arm. Each run is an ordinary run folder: a stopped one resumes when ``run`` starts again.
Records: ``save_run_records.py`` of each folder.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

from common import study_parser, train_missing

PROXY = "proxy100x300"
SUBSET = ["--classes", "random:100", "--split", "300/100/0", "--seed", "0"]
BASE = [
    "--preset", "tiny200-v1", "--images-per-class", "none", "--epochs", "15",
    "--precision", "mixed_bfloat16", "--jit-compile", "off", "--allow-shared-images",
]  # fmt: skip
PAPER = ["--no-batch-norm", "--dropout", "0.5"]
# The sweep of c's and d's optimiser and learning rate: at most three settings.
SWEEP = {
    "sgd01": (["--optimizer", "sgd", "--learning-rate", "0.01"], "SGD, momentum 0.9, learning rate 0.01 (the paper's)"),
    "sgd03": (["--optimizer", "sgd", "--learning-rate", "0.03"], "SGD, momentum 0.9, learning rate 0.03"),
    "adam": (["--optimizer", "adam", "--learning-rate", "0.001"], "Adam, learning rate 0.001"),
}
SWEEP_SEED = 10
CHOSEN = None  # the sweep's choice, once its six runs are in (a key of SWEEP)
SEEDS = (0, 1, 2)
ARMS = {
    "a": ([], "batch norm, LRN (`tiny200-v1`)"),
    "b": (["--no-lrn"], "batch norm, no LRN"),
    "c": (PAPER, "no batch norm, LRN, dropout 0.5 (the paper's)"),
    "d": ([*PAPER, "--no-lrn"], "no batch norm, no LRN, dropout 0.5"),
}
# The two settings in which LRN's effect is measured: (with LRN, without LRN, what it is).
SETTINGS = {"with batch norm": ("a", "b"), "without batch norm (the paper's setting)": ("c", "d")}


def runs() -> dict[str, list[str]]:
    """name -> the train options that name changes in BASE, in the order they run: the batch-norm
    pairs seed by seed (they need no sweep), then the sweep, then the paper's pairs at its choice."""
    named = {}
    for seed in SEEDS:
        for arm in ("a", "b"):
            named[f"{arm}-s{seed}"] = [*ARMS[arm][0], "--seed", str(seed)]
    for setting, (options, _) in SWEEP.items():
        for arm in ("c", "d"):
            named[f"sweep-{setting}-{arm}"] = [*ARMS[arm][0], *options, "--seed", str(SWEEP_SEED)]
    if CHOSEN is not None:
        for seed in SEEDS:
            for arm in ("c", "d"):
                named[f"{arm}-s{seed}"] = [*ARMS[arm][0], *SWEEP[CHOSEN][0], "--seed", str(seed)]
    return named


def command(name, data, runs_dir) -> list[str]:
    return [
        sys.executable, "-m", "alexnet_tf", "train", *BASE, "--data", str(data),
        "--name", f"{PROXY}-{name}", "--runs-dir", str(runs_dir), *runs()[name],
    ]  # fmt: skip


def shell_command(name) -> str:
    return " ".join(
        ["python -m alexnet_tf train", *BASE, f"--data data/{PROXY}", f"--name {PROXY}-{name}", *runs()[name]]
    )


def record(runs_dir, name) -> dict | None:
    """The finished run's metrics.json, or None."""
    path = Path(runs_dir) / f"{PROXY}-{name}" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run(names, data, runs_dir) -> int:
    return train_missing({f"{PROXY}-{name}": command(name, data, runs_dir) for name in names}, runs_dir)


def paired_effect(with_, without, confidence=0.95) -> dict:
    """The effect of a change from paired runs: ``with_[i]`` and ``without[i]`` share seed i.
    Returns the mean of the per-seed differences, its standard error and the two-sided
    ``confidence`` interval from Student's t with n - 1 degrees of freedom (n >= 2)."""
    from scipy import stats

    if len(with_) != len(without) or len(with_) < 2:
        raise ValueError(f"paired_effect needs two equal lists of at least 2 runs, got {len(with_)} and {len(without)}")
    differences = [a - b for a, b in zip(with_, without, strict=True)]
    n = len(differences)
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    se = sd / math.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    return {"n": n, "differences": differences, "mean": mean, "se": se, "low": mean - half, "high": mean + half}


def verdict(setting, effect) -> str:
    """One line that says what the interval allows (effects in accuracy, printed in points)."""
    low, high = 100 * effect["low"], 100 * effect["high"]
    if low > 0:
        says = f"LRN adds between {low:.1f} and {high:.1f} points"
    elif high < 0:
        says = f"LRN costs between {-high:.1f} and {-low:.1f} points"
    else:
        says = f"LRN's effect lies between {low:+.1f} and {high:+.1f} points: no effect is ruled out in that range"
    return f"{setting}: {says} (95% interval, {effect['n']} paired seeds)."


def table(runs_dir) -> str:
    """The sweep's rows, each arm's held-out top-1 by seed, and LRN's paired effect in each setting."""
    lines = ["| sweep setting (arms c, d) | c | d | mean |", "|---|---|---|---|"]
    for setting, (_, what) in SWEEP.items():
        c, d = (record(runs_dir, f"sweep-{setting}-{arm}") for arm in ("c", "d"))
        cells = [f"{100 * m['top1_accuracy']:.1f}%" if m else "" for m in (c, d)]
        mean = f"{50 * (c['top1_accuracy'] + d['top1_accuracy']):.1f}%" if c and d else ""
        lines.append(
            f"| {what}, seed {SWEEP_SEED}{' (chosen)' if setting == CHOSEN else ''} | {' | '.join(cells)} | {mean} |"
        )
    lines += ["", f"| arm | {' | '.join(f'seed {s}' for s in SEEDS)} | mean |", "|---|" + "---|" * (len(SEEDS) + 1)]
    top1 = {arm: [record(runs_dir, f"{arm}-s{seed}") for seed in SEEDS] for arm in ARMS}
    for arm, (_, what) in ARMS.items():
        found = [m["top1_accuracy"] for m in top1[arm] if m]
        cells = [f"{100 * m['top1_accuracy']:.1f}%" if m else "" for m in top1[arm]]
        mean = f"{100 * sum(found) / len(found):.1f}%" if found else ""
        lines.append(f"| {arm}: {what} | {' | '.join(cells)} | {mean} |")
    lines.append("")
    for setting, (on, off) in SETTINGS.items():
        pairs = [(x, y) for x, y in zip(top1[on], top1[off], strict=True) if x and y]
        if len(pairs) < 2:
            lines.append(f"{setting}: {len(pairs)} paired seed(s) so far; the interval needs at least 2.")
            continue
        effect = paired_effect([x["top1_accuracy"] for x, _ in pairs], [y["top1_accuracy"] for _, y in pairs])
        lines.append(
            f"{setting}: LRN's effect {100 * effect['mean']:+.2f} points (per seed: "
            f"{', '.join(f'{100 * d:+.1f}' for d in effect['differences'])}), standard error "
            f"{100 * effect['se']:.2f}, 95% interval {100 * effect['low']:+.1f} to {100 * effect['high']:+.1f}."
        )
        lines.append(verdict(setting, effect))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = study_parser(__doc__, PROXY)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(runs()))
    if unknown:
        parser.error(f"unknown run(s) {unknown}; choose from {', '.join(runs())}")
    if args.step == "data":
        return subprocess.call([sys.executable, "-m", "data_prep", "subset", args.source, "--out", args.data, *SUBSET])
    if args.step == "run":
        return run(args.names or list(runs()), args.data, args.runs_dir)
    if args.step == "commands":
        print("\n".join(shell_command(n) for n in args.names or runs()))
        return 0
    print(table(args.runs_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
