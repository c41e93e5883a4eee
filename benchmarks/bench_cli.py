"""How soon the command line answers: wall time and peak memory of ``python -m alexnet_tf
--help``, of a refused value (``train --epochs 0``), and of ``python -m data_prep --help`` beside
them, each a fresh interpreter, the median of ``--rounds``. Run it on an idle machine.

    python benchmarks/bench_cli.py [--rounds 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -m alexnet_tf --help": ["-m", "alexnet_tf", "--help"],
    "python -m alexnet_tf train --epochs 0": ["-m", "alexnet_tf", "train", "--epochs", "0"],
    "python -m data_prep --help": ["-m", "data_prep", "--help"],
}


def run_once(args) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one fresh interpreter running ``args``."""
    started = time.perf_counter()
    pid = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid
    _, _, usage = os.wait4(pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    print(f"{'command':42s} {'median s':>9s} {'peak MiB':>9s}   ({rounds} rounds, alternated)")
    results = {name: [] for name in COMMANDS}
    for _ in range(rounds):
        for name, args in COMMANDS.items():
            results[name].append(run_once(args))
    for name, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        memory = max(m for _, m in runs)
        print(f"{name:42s} {seconds:9.2f} {memory:9.0f}")


if __name__ == "__main__":
    main()
