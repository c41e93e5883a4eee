"""The ``python -m alexnet_tf`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def prepare_data(data, work_dir="data") -> Path:
    """A dataset root from ``--data``: a Tiny ImageNet folder, a zip, or None for the synthetic set."""
    from data_prep import extract, make_synthetic

    if data is None:
        return make_synthetic(work_dir)
    data = Path(data)
    if data.suffix == ".zip":
        return extract(data, work_dir)
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alexnet_tf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("main", help="data -> summary on the synthetic set, or --data")
    p.add_argument("--data", default=None, help="Tiny ImageNet folder or zip (default: synthetic data)")
    args = parser.parse_args(argv)
    if args.command == "main":
        from data_prep import check, summary_table

        root = prepare_data(args.data)
        print(summary_table(check(root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
