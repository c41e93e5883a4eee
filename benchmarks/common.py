"""What the benchmark scripts share: finding the real Tiny ImageNet data, alternating settings
in one run, and the table they print."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_ZIP = REPO.parent / "shared" / "data" / "tiny-imagenet-200.zip"


def add_data_arguments(parser):
    parser.add_argument(
        "--zip",
        default=os.environ.get("TINY_IMAGENET_ZIP", DEFAULT_ZIP),
        help="the Tiny ImageNet zip (default: $TINY_IMAGENET_ZIP)",
    )
    parser.add_argument("--data", default=None, help="an extracted Tiny ImageNet folder instead of --zip")


def dataset(args, work_dir) -> Path:
    """The extracted dataset: --data as it is, or --zip extracted into ``work_dir``."""
    from data_prep import extract

    if args.data:
        return Path(args.data)
    if not Path(args.zip).is_file():
        sys.exit(f"{args.zip} not found: pass --zip or --data, or set TINY_IMAGENET_ZIP")
    return extract(args.zip, work_dir)


def best_of_alternating(settings, measure, rounds):
    """``measure(setting)`` for each setting, alternated ``rounds`` times so that drift in the
    machine's speed hits every setting alike; the best figure of each."""
    results = {setting: [] for setting in settings}
    for _ in range(rounds):
        for setting in settings:
            results[setting].append(measure(setting))
    return {setting: max(values) for setting, values in results.items()}


def print_ratio_table(columns, best, unit="images/s"):
    """A markdown table: a row per setting (a tuple, one value per column), its figure, and its
    ratio to the first setting's."""
    first = next(iter(best))
    print(f"| {' | '.join(columns)} | {unit} | vs {', '.join(map(str, first))} |")
    print("|" + "---|" * (len(columns) + 2))
    for setting, value in best.items():
        print(f"| {' | '.join(map(str, setting))} | {value:.0f} | {value / best[first]:.2f}x |")


def train_missing(commands, runs_dir) -> int:
    """A study's runs, one after another: ``commands`` maps each run folder's name to its train
    command; a finished run (its metrics.json written) is skipped, and a stopped one resumes.
    Each run's output goes to ``<runs_dir>/<name>.log``. Exit status 1 if any run failed."""
    import subprocess

    Path(runs_dir).mkdir(parents=True, exist_ok=True)  # for the logs beside the run folders
    failed = []
    for name, command in commands.items():
        if (Path(runs_dir) / name / "metrics.json").is_file():
            continue
        log = Path(runs_dir) / f"{name}.log"
        print(f"{name}: training (log: {log})", flush=True)
        with open(log, "a") as out:  # a resumed run appends to its log
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
        if code:
            failed.append(name)
            print(f"{name}: exit {code}; see {log}", flush=True)
    return 1 if failed else 0


def study_parser(description, proxy):
    """The command line of a study on a proxy folder: data, run, table or commands."""
    import argparse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["data", "run", "table", "commands"])
    parser.add_argument("names", nargs="*", help="runs to train (default: every missing one, in order)")
    parser.add_argument("--source", default="data/tiny-imagenet-200", help="the Tiny ImageNet folder (step data)")
    parser.add_argument("--data", default=f"data/{proxy}", help=f"the proxy's folder (default: data/{proxy})")
    parser.add_argument("--runs-dir", default="runs", help="where the run folders go (default: runs)")
    return parser
