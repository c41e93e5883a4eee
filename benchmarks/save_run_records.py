"""Copy the small text records of a run folder into benchmarks/runs/<name>/, for RESULTS.md.

    python benchmarks/save_run_records.py RUN_DIR [RUN_DIR ...]

config.json, history.csv, metrics.json and per_class_val.csv (never models or images); the
machine's own paths in config.json (the data and runs folders) are cut to their last part.
"""

import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "runs"
RECORDS = ("config.json", "history.csv", "metrics.json", "per_class_val.csv")


def save(run_dir: Path) -> Path:
    target = OUT / run_dir.name
    target.mkdir(parents=True, exist_ok=True)
    for name in RECORDS:
        source = run_dir / name
        if not source.is_file():
            sys.exit(f"{source} is missing: is {run_dir} a finished run folder?")
        if name == "config.json":
            config = json.loads(source.read_text())
            for key in ("data", "runs_dir", "init_weights"):
                if config.get(key):
                    config[key] = Path(config[key]).name
            (target / name).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        else:
            shutil.copyfile(source, target / name)
    return target


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(save(Path(arg)))
