"""Run the notebooks top to bottom on the real data, in order, and commit-ready.

    python notebooks/regenerate.py          # every notebook, 01 to 07
    python notebooks/regenerate.py 05 07    # some of them (by number), in that order

Each notebook runs on a fresh kernel in this folder, as in Jupyter, with ``ALEXNET_QUICK`` unset
(the real experiment: notebook 1 downloads the zip into ``data/`` unless it is there). What is
kept is what the notebook shows, minus what does not belong in git: execution timestamps are not
recorded, and figures are re-encoded at most MAX_WIDTH pixels wide as palette PNGs (a quarter of
the size, the same figure) or, for grids of photographs, JPEGs.
A notebook is written (to a temporary file, then renamed) only when it ran to its end; then
``problems`` checks it, as the test suite does for every committed notebook.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
from pathlib import Path

# The kernels get the environment this script was started with: importing the package here (for
# the checks) sets TensorFlow's log level, and a kernel that inherits it prints TensorFlow's start-up
# lines, as for any user who sets the level themselves (alexnet_tf.hardware.quiet_tensorflow_logs).
KERNEL_ENV = {k: v for k, v in os.environ.items() if k != "ALEXNET_QUICK"}
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MAX_BYTES = 500_000
MAX_LINE = 250  # a printed line longer than this is a log, not a result (a Keras epoch line: 300-700)
# Absolute paths of a machine (POSIX roots, a Windows drive), never of the notebook's own folders.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~/])/(?:home|root|Users|tmp|work|content|mnt|var|opt|usr|private|srv)/|[A-Za-z]:\\"
)
MAX_WIDTH = 640  # pixels of an inline figure: about the width of a notebook page on GitHub
FORBIDDEN = ("WARNING", "Traceback", "retracing", "━", "Epoch 1/")


def problems(notebook: dict, name: str = "notebook", size: int | None = None, forbidden_paths=()) -> list[str]:
    """What makes a committed notebook's outputs unfit, one line each (empty: it is clean).
    ``size``: the file's bytes; ``forbidden_paths``: strings (this machine's folders) no output may hold."""
    from alexnet_tf.hardware import DEVICE_PATTERN

    found = []
    if size is not None and size > MAX_BYTES:
        found.append(f"{name}: {size / 1000:.0f} KB, over {MAX_BYTES // 1000} KB")
    if any(key in notebook.get("metadata", {}) for key in ("papermill", "execution")):
        found.append(f"{name}: execution metadata in the notebook's metadata")
    for index, cell in enumerate(notebook.get("cells", [])):
        where = f"{name} cell {index}"
        if "execution" in cell.get("metadata", {}):
            found.append(f"{where}: execution timestamps in its metadata")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"{where}: an error output ({output.get('ename')})")
            for text in _texts(output):
                for word in FORBIDDEN:
                    if word in text:
                        found.append(f"{where}: {word!r} in an output")
                for path in (*forbidden_paths, *ABSOLUTE_PATH.findall(text)):
                    if path and path in text:
                        found.append(f"{where}: a local path ({path}) in an output")
                for line in text.splitlines():
                    if output.get("output_type") == "stream" and len(line) > MAX_LINE:
                        found.append(f"{where}: a printed line of {len(line)} characters (at most {MAX_LINE})")
                    if ("CPU (" in line or "GPU (" in line) and not re.search(DEVICE_PATTERN, line):
                        found.append(f"{where}: a device line the current code does not print: {line.strip()[:80]}")
    return found


def _texts(output: dict) -> list[str]:
    texts = [output.get("text", "")]
    data = output.get("data", {})
    texts += [data.get(kind, "") for kind in ("text/plain", "text/html", "text/markdown")]
    return ["".join(t) if isinstance(t, list) else t for t in texts if t]


def file_problems(path: Path) -> list[str]:
    return problems(
        json.loads(path.read_text()),
        path.name,
        path.stat().st_size,
        # A home of "/" (some containers) would match every path: only folders below the root count.
        forbidden_paths=tuple(str(p) for p in (REPO, Path.home()) if len(p.parts) > 1),
    )


def shrink_png(encoded: str, max_width: int = MAX_WIDTH) -> str:
    """A base64 PNG as a palette PNG of at most ``max_width`` pixels (matplotlib's are RGBA)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii") + "\n"


def as_jpeg(encoded: str, quality: int = 75) -> str:
    """A base64 PNG as a base64 JPEG: a grid of photographs weighs about half its palette PNG."""
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB").save(out, "JPEG", quality=quality)
    return base64.b64encode(out.getvalue()).decode("ascii") + "\n"


def clean(notebook) -> None:
    """What does not belong in git out of an executed notebook (in place). Each figure becomes a
    palette PNG, or a JPEG where that is under 60% of its size (photographs; plots stay sharp PNGs)."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                png = shrink_png(data["image/png"])
                jpeg = as_jpeg(png)
                if len(jpeg) < 0.6 * len(png):
                    del data["image/png"]
                    data["image/jpeg"] = jpeg
                else:
                    data["image/png"] = png
    notebook.metadata.pop("papermill", None)


def regenerate(path: Path) -> list[str]:
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=None, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(HERE)}}
    )
    client.execute(env=KERNEL_ENV)
    clean(notebook)
    partial = path.with_name(f".{path.name}.partial")
    nbformat.write(notebook, partial)
    os.replace(partial, path)
    return file_problems(path)


def main(argv: list[str]) -> int:
    notebooks = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if argv:
        wanted = [next((p for p in notebooks if p.name.startswith(a.zfill(2))), None) for a in argv]
        if None in wanted:
            sys.exit(f"no notebook numbered {argv[wanted.index(None)]} in {HERE.name}/: give numbers such as 01 05")
        notebooks = wanted
    failed = []
    for path in notebooks:
        print(f"running {path.name} ...", flush=True)
        found = regenerate(path)
        print("\n".join(found) if found else f"{path.name}: clean, {path.stat().st_size / 1000:.0f} KB", flush=True)
        failed += found
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
