"""One module writes: every file and folder that ``data_prep`` and ``alexnet_tf`` write goes through
``data_prep/fsutil.py`` (atomic, confined, nothing of the user's replaced). This finds any write
elsewhere in the two packages and names its file and line."""

import ast
import textwrap

import pytest

from conftest import REPO

PACKAGES = ("data_prep", "alexnet_tf")
WRITER = REPO / "data_prep" / "fsutil.py"
# Methods that write, move or remove files (pathlib, numpy, pandas, matplotlib, Pillow, Keras, zipfile).
WRITING_METHODS = {
    "write_text", "write_bytes", "save", "savez", "save_weights", "export", "to_csv", "to_parquet",
    "savefig", "extractall", "hardlink_to", "symlink_to", "rename", "unlink", "mkdir", "rmdir", "touch",
}  # fmt: skip
MODULE_WRITERS = {
    "shutil": {"copy", "copy2", "copyfile", "copyfileobj", "copytree", "move", "rmtree"},
    "os": {"link", "symlink", "replace", "rename", "renames", "remove", "unlink", "makedirs", "mkdir", "rmdir"},
    "tempfile": {"mkdtemp", "mkstemp", "NamedTemporaryFile"},
}
# Keras callbacks that write files themselves.
WRITING_CALLBACKS = {"CSVLogger", "TensorBoard", "ModelCheckpoint", "BackupAndRestore"}


def _mode(call: ast.Call):
    if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant):
        return call.args[1].value
    for keyword in call.keywords:
        if keyword.arg == "mode" and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return "r" if len(call.args) < 2 and not any(k.arg == "mode" for k in call.keywords) else "?"


def writes_in(source: str, filename="<source>") -> list[str]:
    """``file:line: what`` for each write in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        what = None
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                mode = _mode(node)
                if not isinstance(mode, str) or set(mode) & set("wax+?"):
                    what = f"open(..., {mode!r})"
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if owner == "fsutil":
                    pass  # the one module's own functions
                elif owner in MODULE_WRITERS:
                    if func.attr in MODULE_WRITERS[owner]:
                        what = f"{owner}.{func.attr}()"
                elif func.attr in WRITING_METHODS:
                    what = f".{func.attr}()"
        elif isinstance(node, ast.Attribute) and node.attr in WRITING_CALLBACKS:
            what = node.attr
        elif isinstance(node, ast.Name) and node.id in WRITING_CALLBACKS:
            what = node.id
        if what:
            found.append(f"{filename}:{node.lineno}: {what}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_nothing_writes_outside_the_one_module():
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path != WRITER:
                found += writes_in(path.read_text(), str(path.relative_to(REPO)))
    assert not found, "writes outside data_prep/fsutil.py:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "planted",
    [
        'open(path, "w").write("x")',
        'open(path, mode="ab")',
        "Path(p).write_text('x')",
        "model.save('m.keras')",
        "frame.to_csv(path)",
        "fig.savefig(path)",
        "np.save(path, array)",
        "shutil.copy2(a, b)",
        "shutil.rmtree(folder)",
        "os.link(a, b)",
        "os.replace(a, b)",
        "Path(a).rename(b)",
        "folder.mkdir()",
        "archive.extractall(folder)",
        "keras.callbacks.CSVLogger(path)",
    ],
)
def test_a_planted_write_is_found_with_its_line(planted):
    source = textwrap.dedent(f"""
        def harmless(path):
            with open(path) as f:
                return f.read().replace("a", "b")

        def planted(path):
            {planted}
        """)
    assert writes_in(source, "planted.py") == [f"planted.py:7: {writes_in(planted)[0].split(': ', 1)[1]}"]
    assert writes_in("open(path)\nopen(path, 'rb')\nopen(path, newline='')\n") == []
