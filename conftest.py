"""Test-wide settings, also seen by the notebook kernels that nbval starts (they inherit the environment),
and the check that a test session leaves the checkout as it found it."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The notebooks run in quick mode under test: the same code path on the small synthetic set.
os.environ.setdefault("ALEXNET_QUICK", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The notebooks' data and runs (alexnet_tf.colab.setup reads these) and decode cache go to a fresh temporary folder, so
# that each session trains their runs afresh and nothing is written into the checkout's data/ or runs/.
# Each test process has its own (pytest-xdist's workers inherit the environment of the process that
# started them, so a folder this file chose there, named in ALEXNET_TF_TEST_SCRATCH, is replaced).
_SCRATCH = None
_OURS = os.environ.get("ALEXNET_TF_TEST_SCRATCH")
for _variable, _folder in (
    ("ALEXNET_TF_DATA_DIR", "data"),
    ("ALEXNET_TF_RUNS_DIR", "runs"),
    ("ALEXNET_TF_CACHE", "cache"),
):
    if _variable not in os.environ or (_OURS and os.environ[_variable].startswith(_OURS)):
        _SCRATCH = _SCRATCH or Path(tempfile.mkdtemp(prefix="alexnet-tf-notebooks-"))
        os.environ[_variable] = str(_SCRATCH / _folder)
if _SCRATCH is not None:
    os.environ["ALEXNET_TF_TEST_SCRATCH"] = str(_SCRATCH)

REPO = Path(__file__).resolve().parent
# What pytest itself leaves, Python's bytecode and coverage's data (under `coverage run`): allowed to appear.
OWN = (".pytest_cache", "__pycache__")
OWN_PREFIXES = (".coverage",)


def checkout_state() -> set[str] | None:
    """``git status --porcelain --ignored`` of the checkout, file by file (a new file inside an
    existing data/ or runs/ shows too), less pytest's and Python's own caches and coverage's data
    (None where this is no git checkout)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {
        line
        for line in out.splitlines()
        if not any(part in OWN or part.startswith(OWN_PREFIXES) for part in Path(line[3:]).parts)
    }


# Notebooks whose cells take over 20 s (nbval's items carry no markers of their own).
SLOW_NOTEBOOKS = ("06_experiments.ipynb", "07_transfer_learning.ipynb")


# Session fixtures costly enough that the files using them share one pytest-xdist worker, which makes
# them once (each worker makes its own copy of any session fixture it uses).
SHARED_FIXTURES = ("learned_run", "real_root")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    files = {}
    for item in items:
        files.setdefault(Path(str(item.fspath)), []).append(item)
        if Path(str(item.fspath)).name in SLOW_NOTEBOOKS:
            item.add_marker(pytest.mark.slow)
    if not config.pluginmanager.hasplugin("xdist"):  # e.g. CI's floor environment: one process, no groups
        return
    # Under `--dist loadgroup` (pyproject.toml's addopts) a group runs whole on one worker, in order: the
    # notebooks (as a user runs them: notebook 5 evaluates notebook 4's run), the files sharing a costly
    # fixture, or else a file (a module's fixtures made once).
    for path, file_items in files.items():
        used = set().union(*(getattr(item, "fixturenames", ()) for item in file_items))
        shared = next((name for name in SHARED_FIXTURES if name in used), path.name)
        group = "notebooks" if path.suffix == ".ipynb" else shared
        for item in file_items:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_sessionstart(session):
    session.config.stash_checkout = checkout_state()


def pytest_sessionfinish(session, exitstatus):
    if _SCRATCH is not None:
        shutil.rmtree(_SCRATCH, ignore_errors=True)
    before, after = getattr(session.config, "stash_checkout", None), checkout_state()
    if before is None or after is None or after <= before:
        return
    new = sorted(after - before)
    print(f"\nerror: the tests left {len(new)} new path(s) in the checkout (tests write only to temporary folders):")
    print("\n".join(f"  {line}" for line in new))
    session.exitstatus = 1
