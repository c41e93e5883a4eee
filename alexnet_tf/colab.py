"""The notebooks' set-up: what the runtime has, and where data and runs live.

Every notebook's first code cell fetches and installs the project when it runs in Colab
(from ``REPO_URL``: the one address a fork changes, here and in that cell; a test checks that
they agree), then calls ``setup``. Outside Colab the cell only imports the checkout.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from data_prep import fsutil

REPO_URL = "https://github.com/alexnet-tf/alexnet-tf"
DRIVE_MOUNT = "/content/drive"
# Where the notebooks keep data and runs unless setup is told otherwise: these variables, else
# the checkout's data/ and runs/ (the tests point them at temporary folders).
DATA_DIR_VARIABLE, RUNS_DIR_VARIABLE = "ALEXNET_TF_DATA_DIR", "ALEXNET_TF_RUNS_DIR"


def stale_modules(names=("numpy", "pandas", "tensorflow", "keras", "jax")) -> list[str]:
    """Modules loaded in this process whose installed version has changed since (a restart is due)."""
    from importlib import metadata

    stale = []
    for name in names:
        module = sys.modules.get(name)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if module is not None and getattr(module, "__version__", installed) != installed:
            stale.append(f"{name} {module.__version__} -> {installed}")
    return stale


def install_summary(pip_output: str) -> str:
    """One line on what ``pip install -e`` put in beside the project (its "Successfully installed"
    line): with the project's floors at Colab's versions, nothing of Colab's is upgraded."""
    line = next((x for x in pip_output.splitlines() if x.startswith("Successfully installed ")), "")
    others = [p for p in line.removeprefix("Successfully installed ").split() if not p.startswith("alexnet")]
    if not others:
        return "pip installed the project alone: TensorFlow, Keras, numpy and the rest are Colab's own"
    return f"pip also installed or upgraded {', '.join(others)}; restart the session if it asks"


def setup(
    keep_on_drive=False,
    data_dir=None,
    runs_dir=None,
    drive_folder="alexnet-tf",
    colab=None,
    pip_output=None,
) -> dict:
    """Print the TensorFlow, Keras and device this runtime has, and return ``{"data_dir", "runs_dir"}``.

    ``data_dir`` and ``runs_dir`` default to ``$ALEXNET_TF_DATA_DIR`` and ``$ALEXNET_TF_RUNS_DIR``,
    else ``../data`` and ``../runs`` (the checkout's, seen from ``notebooks/``).

    ``keep_on_drive`` (Colab only; off elsewhere): mount Google Drive and keep the data and runs in
    ``MyDrive/<drive_folder>/``, so a trained run and the extracted data outlive the Colab VM
    and a later session resumes or reloads them. ``colab``: the ``google.colab`` module (found
    by itself in Colab; tests pass a stand-in). ``pip_output``: what the set-up cell's
    ``pip install`` printed, summarised in one line (see ``install_summary``).
    """
    from .hardware import describe_device, quiet_tensorflow_logs

    colab = colab if colab is not None else sys.modules.get("google.colab")
    data_dir = data_dir or os.environ.get(DATA_DIR_VARIABLE) or "../data"
    runs_dir = runs_dir or os.environ.get(RUNS_DIR_VARIABLE) or "../runs"
    if keep_on_drive and colab is None:
        print("keep_on_drive applies in Colab only: data and runs stay in local folders")
    elif keep_on_drive:
        colab.drive.mount(DRIVE_MOUNT)
        base = Path(DRIVE_MOUNT) / "MyDrive" / drive_folder
        data_dir, runs_dir = base / "data", base / "runs"
        for folder in (data_dir, runs_dir):
            fsutil.make_folder(folder)
    quiet_tensorflow_logs()
    import keras

    versions = [f"Keras {keras.__version__} ({keras.backend.backend()})"]
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow as tf

        versions.insert(0, f"TensorFlow {tf.__version__}")
    device, on_gpu = describe_device()
    print(f"{', '.join(versions)}; {device}")
    if pip_output is not None:
        print(install_summary(pip_output))
    stale = stale_modules()
    if stale:
        print(
            f"The install replaced {', '.join(stale)} after this session had loaded them: restart the session "
            f"(Runtime > Restart session) and run the notebook again"
        )
    if colab is not None and not on_gpu:
        print("No GPU: in Colab choose Runtime > Change runtime type > T4 GPU, then run the notebook again")
    return {"data_dir": str(data_dir), "runs_dir": str(runs_dir)}
