"""Every run folder that README.md and RESULTS.md name under benchmarks/runs/ is in git, with its
records; and the script that copies records there refuses a place git would ignore."""

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDED = ("config.json", "history.csv", "metrics.json")
MENTION = r"benchmarks/runs/([A-Za-z0-9_.*+-]+)"


def mentioned_runs(text: str) -> set[str]:
    import re

    return {m.rstrip(".") for m in re.findall(MENTION, text)}


def tracked_files() -> set[str]:
    out = subprocess.run(["git", "ls-files", "benchmarks/runs"], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def missing_records(names, tracked) -> list[str]:
    """What git lacks of each named run folder (a ``*`` in a name must match at least one folder)."""
    folders = {Path(f).parts[2] for f in tracked if len(Path(f).parts) > 3}
    problems = []
    for name in sorted(names):
        matched = sorted(fnmatch.filter(folders, name)) if "*" in name else [name]
        if not matched:
            problems.append(f"benchmarks/runs/{name} matches no folder in git")
        for folder in matched:
            problems += [
                f"benchmarks/runs/{folder}/{n} is not in git"
                for n in NEEDED
                if f"benchmarks/runs/{folder}/{n}" not in tracked
            ]
    return problems


def test_every_run_the_docs_name_is_in_git():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    pages = [REPO / "README.md", REPO / "benchmarks" / "RESULTS.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "".join(p.read_text() for p in pages)
    assert missing_records(mentioned_runs(text), tracked_files()) == []


def test_the_check_catches_what_is_missing():
    tracked = {f"benchmarks/runs/a/{n}" for n in NEEDED} | {"benchmarks/runs/b-1/config.json"}
    text = "see `benchmarks/runs/a/` and benchmarks/runs/b-*/. Also benchmarks/runs/gone/"
    assert mentioned_runs(text) == {"a", "b-*", "gone"}
    problems = missing_records(mentioned_runs(text), tracked)
    assert "benchmarks/runs/b-1/history.csv is not in git" in problems
    assert "benchmarks/runs/gone/config.json is not in git" in problems
    assert not any("/a/" in p for p in problems)
    assert missing_records({"c-*"}, tracked) == ["benchmarks/runs/c-* matches no folder in git"]


def test_records_of_benchmarks_runs_are_not_ignored():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "check-ignore", "--no-index", "benchmarks/runs/x/config.json", "runs/x/config.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.stdout.split() == ["runs/x/config.json"]  # the top-level runs/ only


def _save_run_records():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import save_run_records

    return save_run_records


def _finished_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"data": "/home/me/data/tiny", "runs_dir": "/home/me/runs"}))
    for name in ("history.csv", "metrics.json", "per_class_val.csv"):
        (folder / name).write_text("x\n")
    return folder


def test_save_run_records_refuses_a_place_git_ignores(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("runs/\n")  # the unanchored pattern that hid every record
    run = _finished_run(tmp_path / "run-a")
    save = _save_run_records().save
    with pytest.raises(SystemExit, match="git ignores"):
        save(run, repo / "benchmarks" / "runs")
    assert not (repo / "benchmarks" / "runs" / "run-a").exists()
    (repo / ".gitignore").write_text("/runs/\n")
    target = save(run, repo / "benchmarks" / "runs")
    assert json.loads((target / "config.json").read_text()) == {"data": "tiny", "runs_dir": "runs"}
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "history.csv",
        "metrics.json",
        "per_class_val.csv",
    ]


def test_save_run_records_runs_as_a_script_from_any_folder(tmp_path):
    (tmp_path / "not-a-run").mkdir()
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "save_run_records.py"), "not-a-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 1 and "is missing: is not-a-run a finished run folder?" in done.stderr, done.stderr


def recorded_commands(text: str) -> list[tuple[str, list[str]]]:
    """``(run name, train arguments)`` of each ``python -m alexnet_tf train ... --name NAME`` in a
    text's code blocks (backslash-continued lines joined, redirections dropped); a name with the
    placeholder ``S`` and ``--seed S`` stands for each seed whose folder is in benchmarks/runs."""
    import re
    import shlex

    commands = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.DOTALL):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            if "-m alexnet_tf train " not in line:
                continue
            args = shlex.split(re.split(r" >|&$", line.split("-m alexnet_tf ", 1)[1])[0])
            if "--name" not in args:
                continue
            name = args[args.index("--name") + 1]
            if "--seed" in args and args[args.index("--seed") + 1] == "S":
                for folder in sorted((REPO / "benchmarks" / "runs").glob(name.replace("S", "[0-9]"))):
                    seed = folder.name[len(name) - 1 :]
                    commands.append((folder.name, [a.replace("S", seed) if a in ("S", name) else a for a in args]))
            else:
                commands.append((name, args))
    return commands


def test_each_recorded_command_gives_its_runs_config():
    """The commands RESULTS.md gives for its runs reproduce them: each one's config, from today's
    presets, is the one its committed record holds (but for where the data and runs folders are,
    and XLA, which an unset option leaves to the machine)."""
    from alexnet_tf.cli import build_parser, config_from_args
    from alexnet_tf.config import TrainConfig

    checked = []
    for name, args in recorded_commands((REPO / "benchmarks" / "RESULTS.md").read_text()):
        record = REPO / "benchmarks" / "runs" / name / "config.json"
        if not record.is_file():
            continue
        recorded = TrainConfig.from_json(record.read_text())
        config = config_from_args(build_parser().parse_args(args))
        kept = {k: getattr(recorded, k) for k in ("data", "runs_dir")}
        if config.jit_compile is None:
            kept["jit_compile"] = recorded.jit_compile
        assert config.replace(**kept).differences(recorded) == [], name
        checked.append(name)
    assert {"tiny200-v2-40e", "tiny10-v2-s0", "tiny10-v2-s2"} <= set(checked), checked


def test_recorded_commands_are_read_as_written():
    text = (
        "```bash\nnohup python -m alexnet_tf train --preset tiny200 --data d \\\n"
        "    --name run-a --runs-dir ~/runs >> ~/runs/run-a.log 2>&1 &\n```\n"
        "`python -m alexnet_tf train --name inline` is not a block\n"
        "```bash\npython -m alexnet_tf train --preset tiny10 --seed S --name tiny10-v2-sS\n```\n"
    )
    commands = dict(recorded_commands(text))
    assert commands["run-a"] == [
        "train",
        "--preset",
        "tiny200",
        "--data",
        "d",
        "--name",
        "run-a",
        "--runs-dir",
        "~/runs",
    ]
    assert commands["tiny10-v2-s1"] == ["train", "--preset", "tiny10", "--seed", "1", "--name", "tiny10-v2-s1"]
    assert "inline" not in commands
