"""The README's two quickstart commands are what CI runs: keep them in step."""

import re
import sys

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


# --- links: every relative link of README.md and docs/ resolves, anchors included ------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation other than '-' and '_'
    dropped, each space a '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path) -> set[str]:
    found, seen = set(), {}
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6} (.+)", line)):
            anchor = github_anchor(m.group(1))
            n = seen.get(anchor, 0)
            seen[anchor] = n + 1
            found.add(anchor if n == 0 else f"{anchor}-{n}")
    return found


def broken_links(page) -> list[str]:
    problems = []
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # code blocks hold no links
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            problems.append(f"{page.relative_to(REPO)}: {target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    return problems


def test_every_relative_link_resolves():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 5
    assert [p for page in pages for p in broken_links(page)] == []


def test_the_link_check_finds_a_broken_link_and_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "a.md").write_text(
        "# Top `x` (y)\n\n[ok](a.md#top-x-y) [gone](b.md) [bad](a.md#nowhere) [web](https://x)\n"
    )
    assert broken_links(tmp_path / "a.md") == ["a.md: b.md (no such file)", "a.md: a.md#nowhere (no such heading)"]


def test_the_readme_is_short_and_leads_with_the_results():
    readme = (REPO / "README.md").read_text()
    assert readme.count("\n") <= 200
    first_screen = "\n".join(readme.splitlines()[:60])
    assert "## Results" in first_screen and "python -m alexnet_tf train --preset tiny200" in first_screen
