"""Training without TensorFlow: the quick preset end to end on JAX and PyTorch, with
``import tensorflow`` made to fail, so nothing on that path can lean on it unnoticed."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

# Runs in a fresh interpreter: block TensorFlow, pick the backend, train, get killed, resume, reload.
SCRIPT = r"""
import importlib.abc, importlib.machinery, json, os, sys

class BlockTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # Found, but fails to import, as a broken or missing install would (other libraries probe for it).
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked in this test)", name=spec.name)

sys.meta_path.insert(0, BlockTensorFlow())
os.environ["KERAS_BACKEND"] = sys.argv[1]
import keras
import numpy as np
from alexnet_tf.config import preset
from alexnet_tf.saved_run import evaluate_saved
from alexnet_tf.training import train

class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt

# Small: two epochs, so that the resumed run trains the last, of 4 steps (the last one partial).
config = preset("quick", data=sys.argv[2], runs_dir=sys.argv[3], epochs=2, images_per_class=10)
try:
    train(config, callbacks=[Kill()], verbose=0)
except KeyboardInterrupt:
    pass
run_dir = os.path.join(sys.argv[3], config.run_name)
killed_with_backup = os.path.isdir(os.path.join(run_dir, "backup"))
result = train(config, verbose=0)
reloaded = keras.models.load_model(os.path.join(run_dir, "model.keras"))
x = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
same = np.allclose(reloaded.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-5)
again = evaluate_saved(run_dir)
# The same run, never interrupted: the resumed one should have trained the same model.
whole = train(config.replace(runs_dir=os.path.join(sys.argv[3], "uninterrupted")), verbose=0)
columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
resume_gap = float(np.max(np.abs(whole.history[columns].to_numpy() - result.history[columns].to_numpy())))
print("RESULT " + json.dumps({
    "resume_gap": resume_gap,
    "backend": keras.backend.backend(), "tensorflow_loaded": "tensorflow" in sys.modules,
    "killed_with_backup": killed_with_backup, "resumed": result.metrics["resumed"],
    "epochs": list(result.history["epoch"]), "top1": result.metrics["top1_accuracy"],
    "reevaluated_top1": again["top1_accuracy"], "reload_predicts_the_same": bool(same),
    "files": sorted(os.listdir(run_dir)), "run_dir": run_dir,
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_quick_preset_trains_resumes_and_reloads_without_tensorflow(backend, synthetic_root, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (requirements.txt installs jax; torch is optional)")
    # JAX compiles the same programs for each of the three runs: compiled once, they are read back
    # from this cache (XLA's compiling is most of a small run's time on JAX).
    cache = {
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, backend, str(synthetic_root), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **cache},
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert result["backend"] == backend and result["tensorflow_loaded"] is False
    assert result["killed_with_backup"] and result["resumed"] and result["epochs"] == [0, 1]
    assert result["reevaluated_top1"] == pytest.approx(result["top1"])
    # Same data order and random numbers after the resume as without the kill: the same curves.
    assert result["resume_gap"] < 1e-5
    assert result["reload_predicts_the_same"]
    for name in (
        "config.json",
        "manifest.csv",
        "history.csv",
        "metrics.json",
        "model.keras",
        "best.keras",
        "per_class_val.csv",
        "figures",
    ):
        assert name in result["files"]
    assert "backup" not in result["files"]
    metrics = json.loads((tmp_path / result["run_dir"] / "metrics.json").read_text())
    assert metrics["device"].endswith(f"backend {backend}")
