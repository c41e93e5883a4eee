"""Copy the small text records of a run folder into benchmarks/runs/<name>/, for RESULTS.md.

    python benchmarks/save_run_records.py RUN_DIR [RUN_DIR ...]

config.json, history.csv, metrics.json and per_class_val.csv (never models or images); the
machine's own paths in config.json (the data and runs folders) are cut to their last part.
Refuses to write where git would ignore the files: a record that never reaches git backs nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from common import REPO  # first: it puts the repository on the path, as for every benchmark script

from alexnet_tf.run_folder import RunFolder

OUT = REPO / "benchmarks" / "runs"


def records(run_dir: Path) -> list[Path]:
    """The run folder's small text records: its config, history, metrics and per-class report."""
    run = RunFolder.at(run_dir)
    return [run.config_file, run.history_file, run.metrics_file, run.per_class_file("val")]


def ignored_by_git(path: Path) -> bool:
    """Whether git would ignore ``path`` in the repository that holds it (False outside a repository)."""
    path = Path(path).resolve()
    where = next(p for p in path.parents if p.is_dir())
    done = subprocess.run(
        ["git", "-C", str(where), "check-ignore", "-q", "--no-index", str(path)], check=False, capture_output=True
    )
    return done.returncode == 0


def save(run_dir: Path, out: Path = OUT) -> Path:
    target = out / run_dir.name
    sources = records(run_dir)
    missing = [source for source in sources if not source.is_file()]
    if missing:
        sys.exit(f"{missing[0]} is missing: is {run_dir} a finished run folder?")
    ignored = [source.name for source in sources if ignored_by_git(target / source.name)]
    if ignored:
        sys.exit(
            f"git ignores {target / ignored[0]}: change the ignore pattern (git check-ignore -v shows which) "
            "before saving records there"
        )
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        name = source.name
        if source == sources[0]:  # the config
            config = json.loads(source.read_text())
            for key in ("data", "runs_dir", "init_weights"):
                if config.get(key):
                    config[key] = Path(config[key]).name
            text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        else:
            text = source.read_text()
        temporary = target / f".{name}.tmp"
        temporary.write_text(text)
        os.replace(temporary, target / name)  # a stop midway leaves the old file whole
    return target


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        print(save(Path(arg)))
