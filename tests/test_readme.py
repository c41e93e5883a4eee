"""The README's two quickstart commands are what CI runs: keep them in step."""

import re

from conftest import REPO


def quickstart_commands():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", readme, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    setup_and_main, setup_and_test = quickstart_commands()
    install, test = setup_and_test.split(" && ")
    assert setup_and_main.startswith(install + " && ")
    ci = (REPO / ".ci" / "run").read_text()
    assert f"python -m {install.removeprefix('pip ')}".replace("install ", "pip install -q ") in ci
    assert test in ci.splitlines()
