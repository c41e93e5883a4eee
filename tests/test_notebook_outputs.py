"""The committed notebooks' outputs are the showcase: clean by notebooks/regenerate.py's rules,
and those rules catch each fault they name."""

import base64
import importlib.util
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alexnet_tf.hardware import DEVICE_PATTERN, describe_device

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
spec = importlib.util.spec_from_file_location("regenerate", NOTEBOOKS / "regenerate.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebook_is_clean(path):
    assert regenerate.file_problems(path) == []


def test_the_device_pattern_is_what_the_code_prints():
    assert re.fullmatch(DEVICE_PATTERN, describe_device()[0])


def stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def notebook(*outputs, metadata=None):
    return {"cells": [{"cell_type": "code", "metadata": metadata or {}, "outputs": list(outputs)}], "metadata": {}}


GOOD_DEVICE = "Training on CPU (2 cores, bfloat16: avx512_bf16), backend tensorflow; precision mixed_bfloat16, XLA off"


def test_a_clean_notebook_has_no_problems():
    clean = notebook(
        stream(GOOD_DEVICE + "\nepoch  1/65  loss 2.301  top-1 0.112  val top-1 0.160  val top-5 0.608  16 s\n"),
        {
            "output_type": "execute_result",
            "data": {"text/plain": "{'device': 'GPU (compute capability 7.5), backend jax'}"},
        },
    )
    assert regenerate.problems(clean, size=10_000) == []


@pytest.mark.parametrize(
    "bad, said",
    [
        (notebook(stream("WARNING:tensorflow:5 out of the last 9 calls\n", "stderr")), "'WARNING'"),
        (notebook(stream("Traceback (most recent call last):\n")), "'Traceback'"),
        (notebook(stream("triggered tf.function retracing\n")), "'retracing'"),
        (notebook(stream("32/32 ━━━━━━━━ 2s\n")), "'━'"),
        (notebook(stream("Epoch 1/65\n32/32 - 16s - accuracy: 0.1\n")), "'Epoch 1/'"),
        (notebook(stream("Data: /home/ana/alexnet-tf/data/tiny-imagenet-200\n")), "a local path"),
        (notebook(stream("Run folder: C:\\Users\\ana\\runs\n")), "a local path"),
        (notebook(stream("Training on CPU (2 cores), backend tensorflow\n")), "a device line"),
        (notebook(stream("x" * 300 + "\n")), "a printed line of 300"),
        (notebook({"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}), "an error output"),
        (
            notebook(stream("ok\n"), metadata={"execution": {"iopub.execute_input": "2026-12-01T10:00:00Z"}}),
            "timestamps",
        ),
    ],
)
def test_each_fault_is_found(bad, said):
    found = regenerate.problems(bad, "nb")
    assert any(said in line for line in found), found


def test_a_big_notebook_and_this_machines_folders_are_found():
    assert "over 500 KB" in regenerate.problems(notebook(), size=600_000)[0]
    here = str(Path.cwd())
    found = regenerate.problems(notebook(stream(f"cache: {here}/x\n")), forbidden_paths=(here,))
    assert any("a local path" in line for line in found)


def test_shrink_png_keeps_the_picture_and_bounds_its_width():
    rng = np.random.default_rng(0)
    picture = np.kron(rng.integers(0, 255, (12, 24, 3), dtype=np.uint8), np.ones((50, 50, 1), np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(picture).convert("RGBA").save(buffer, "PNG")
    shrunk = Image.open(
        io.BytesIO(base64.b64decode(regenerate.shrink_png(base64.b64encode(buffer.getvalue()).decode())))
    )
    width = regenerate.MAX_WIDTH
    assert shrunk.width == width and shrunk.height == width // 2
    # A 50-pixel block of the original is 50 * width / 1200 pixels here: its middle is one colour.
    scale = width / 1200
    middle = slice(int(110 * scale), int(140 * scale))  # block (2, 2) spans 100-150 there
    block = np.asarray(shrunk.convert("RGB"))[middle, middle].astype(int)
    assert np.abs(block - picture[125, 125]).max() <= 24


def test_notebook_5_shows_the_scores_its_runs_recorded():
    """Notebook 5 scores notebook 4's Tiny-10 run and the 200-class run again: what it shows must be
    what their committed records hold (flip averaging where the run used it), not a second number."""
    from alexnet_tf import preset

    cells = json.loads((NOTEBOOKS / "05_evaluate.ipynb").read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    printed = "\n".join(
        text for cell in cells for output in cell.get("outputs", []) for text in regenerate._texts(output)
    )
    tiny10 = re.search(r'PRESET = "quick" if QUICK else "([\w-]+)"', code).group(1)
    name_200 = re.search(r'NAME_200 = "([\w-]+)"', code).group(1)
    records = NOTEBOOKS.parent / "benchmarks" / "runs"
    folder = preset(tiny10, data="data/tiny-imagenet-200", classes=10).run_name
    record = json.loads((records / folder / "metrics.json").read_text())
    assert f"'top1_accuracy': {round(record['top1_accuracy'], 4)}," in printed, folder
    assert f"'top5_accuracy': {round(record['top5_accuracy'], 4)}," in printed, folder
    record_200 = json.loads((records / name_200 / "metrics.json").read_text())
    assert f"(top-1 accuracy {record_200['top1_accuracy']:.3f})" in printed, name_200
    assert f"top-5 error {record_200['top5_error']:.3f}" in printed, name_200
