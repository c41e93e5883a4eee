"""The trained networks this project ships, each in one line: ``alexnet_tf.pretrained("tiny200")``.

A shipped network is two files in ``alexnet_tf/weights/``:
- ``<name>.json``, its record (part of the package): what a run's ``models.json`` holds of a model
  file (the weights file's sha256, the class count and input shape), the file's size, its classes
  (``class_names``: wnid and words, in the order of its outputs), the config it was trained with,
  its input normalisation, the commit and command that trained it, the run's val score and the
  shipped file's own;
- its weights file, ``<name>.weights.npz``: the model's weights in order, as float16 (half of
  float32's size; the record's score is the float16 file's). It is kept in the repository, not in
  the package: inside a checkout it is read where it lies; a pip-installed package fetches it once
  from the repository (``keras.utils.get_file``), checks its sha256 and caches it.

``alexnet_tf.saved_run.ship`` writes both from a finished run folder
(``benchmarks/ship_pretrained.py`` on the command line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep import fsutil
from data_prep.fsutil import file_sha256

from .colab import REPO_URL
from .config import TrainConfig
from .registry import MODELS

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# Where a pip-installed package fetches a weights file its checkout would hold (the sha256 pins it).
BASE_URL = f"{REPO_URL}/raw/main/alexnet_tf/weights/"


@dataclass(frozen=True)
class Pretrained:
    """A shipped network: its Keras model, its classes (``(wnid, words)`` in the order of the
    model's outputs), the config it was trained with and its record."""

    name: str
    model: object
    classes: list
    config: TrainConfig
    record: dict

    @property
    def class_names(self) -> list[str]:
        return [wnid for wnid, _ in self.classes]

    @property
    def words(self) -> list[str]:
        return [words for _, words in self.classes]


def names() -> list[str]:
    """The names of the shipped networks."""
    return sorted(p.name.removesuffix(".json") for p in WEIGHTS_DIR.glob("*.json"))


def record(name: str, weights_dir=None) -> dict:
    """The record of shipped network ``name``."""
    path = Path(weights_dir or WEIGHTS_DIR) / f"{name}.json"
    if not path.is_file():
        names = sorted(p.name.removesuffix(".json") for p in path.parent.glob("*.json"))
        raise ValueError(f"no shipped network {name!r}; the shipped ones: {', '.join(names) or 'none'}")
    return json.loads(path.read_text())


def weights_file(name: str, weights_dir=None, cache_dir=None, base_url=BASE_URL) -> Path:
    """Network ``name``'s weights file: the one beside its record where it lies there (a
    checkout), else fetched from ``base_url`` once and cached under ``cache_dir`` (Keras's
    cache, ``~/.keras``, by default); either way checked against the record's sha256."""
    rec = record(name, weights_dir)
    local = Path(weights_dir or WEIGHTS_DIR) / rec["file"]
    if local.is_file():
        if file_sha256(local) != rec["sha256"]:
            raise ValueError(
                f"{local} is not the file its record names (sha256 {rec['sha256'][:12]}...): "
                f"restore it with git checkout -- {local.name}, or delete it to fetch it"
            )
        return local
    import keras

    if cache_dir is not None:  # Keras falls back to /tmp/.keras for a folder that does not exist
        fsutil.make_folder(cache_dir)
    # Keras writes the download into its cache (a temporary name, then the file once its hash is checked).
    fetched = keras.utils.get_file(
        rec["file"],
        origin=base_url + rec["file"],
        file_hash=rec["sha256"],
        hash_algorithm="sha256",
        cache_dir=None if cache_dir is None else str(cache_dir),
        cache_subdir="alexnet_tf",
    )
    return Path(fetched)


def pretrained(name: str = "tiny200", weights_dir=None, cache_dir=None, base_url=BASE_URL) -> Pretrained:
    """Shipped network ``name`` with its class names, ready to predict on uint8 images of its
    input size (``alexnet_tf.evaluate.predict``, ``explain.grad_cam``); see ``weights_file`` for
    where its weights come from."""
    return network(name, record(name, weights_dir), weights_file(name, weights_dir, cache_dir, base_url))


def network(name: str, rec: dict, path) -> Pretrained:
    """The network that record ``rec`` describes, with the weights of the file at ``path``."""
    config = TrainConfig.from_json(json.dumps(rec["config"]), source=f"{name}.json")
    classes = [tuple(c) for c in rec["class_names"]]
    if len(classes) != rec["classes"] or [config.image_size, config.image_size, 3] != rec["input_shape"]:
        raise ValueError(f"{name}.json contradicts itself: its class count or input shape is not its config's")
    model = MODELS.lookup(config.variant)(config, len(classes), rec["mean"], rec["variance"])
    with np.load(path) as arrays:
        weights = [arrays[f"w{i}"] for i in range(len(arrays.files))]
    expected = [tuple(w.shape) for w in model.weights]
    if [w.shape for w in weights] != expected:
        raise ValueError(f"{path} holds {len(weights)} arrays that do not fit {config.variant}'s {len(expected)}")
    model.set_weights([w.astype(v.dtype) for w, v in zip(weights, model.weights)])
    return Pretrained(name, model, classes, config, rec)


def weights_arrays(model) -> dict:
    """``model``'s weights as float16 arrays named in order (``w0``, ``w1``, ...), the weights file's content."""
    return {f"w{i}": np.asarray(w, dtype=np.float32).astype(np.float16) for i, w in enumerate(model.get_weights())}
