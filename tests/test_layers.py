"""The packages point one way: ``data_prep`` (the on-disk format, decoding, the cache) sits below
``alexnet_tf`` (models and training), and no chain of imports, at module level or inside a
function, comes back to where it started."""

import ast
import subprocess
import sys

from conftest import REPO

PACKAGES = ("data_prep", "alexnet_tf")


def module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """``(module, module.name)`` of every import in ``path``, wherever in the file it is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update((alias.name, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update((base, f"{base}.{alias.name}") for alias in node.names)
    return found


def import_graph():
    paths = {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        # "from package import module" imports the module; "from module import name", the module.
        targets = set()
        for base, full in imports_of(path):
            target = full if full in paths else base
            if target in paths and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_data_package_never_imports_the_training_package():
    graph = import_graph()
    upward = [
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a.startswith("data_prep") and b.startswith("alexnet_tf")
    ]
    assert not upward, upward


def test_no_import_cycle_in_either_package():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_walk_sees_imports_inside_functions():
    graph = import_graph()
    assert "data_prep.subset" in graph["alexnet_tf.data"]  # imported inside load_data


def test_data_tools_load_without_keras():
    code = "import sys, data_prep, data_prep.__main__; print(sorted({'keras', 'alexnet_tf'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
