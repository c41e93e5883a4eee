"""AlexNet with Local Response Normalization on Tiny ImageNet, in Keras 3.

``import alexnet_tf`` imports Keras and registers the project's layers and schedules, so that
``keras.models.load_model`` reads every model the project saved. Choose the backend
(``KERAS_BACKEND``) before importing it. The data tools (``data_prep``) need neither this
package nor Keras. The names below are imported on first use (``train`` and
``evaluate_saved`` with pandas and matplotlib).

``python -m alexnet_tf`` reads its arguments before Keras loads, so that help and a refused
option or value come at once; its commands then call ``load_keras``.
"""

import importlib

from .hardware import quiet_tensorflow_logs, require_backend, started_as_command

__version__ = "0.1.0"

# The public names, each from its module.
_API = {
    "AugmentConfig": ".config",
    "DataFormatError": "data_prep.tiny_imagenet",
    "LocalResponseNormalization": ".model",
    "OneCycle": ".schedules",
    "TrainConfig": ".config",
    "WarmupCosine": ".schedules",
    "alexnet_model": ".model",
    "channel_stats": "data_prep.images",
    "class_descriptions": "data_prep.images",
    "directory_dataset": ".data",
    "evaluate_predictions": ".evaluate",
    "evaluate_saved": ".saved_run",
    "fast_augmenter": ".augment",
    "image_data_generator": ".augment",
    "learning_rate": ".schedules",
    "load_dataset": "data_prep.images",
    "lr_schedule": ".schedules",
    "make_dataset": ".feed",
    "plateau_callback": ".schedules",
    "prediction_table": ".evaluate",
    "preset": ".config",
    "pretrained": ".shipped",
    "register_augmentation": ".registry",
    "register_model": ".registry",
    "select_files": "data_prep.images",
    "train": ".training",
}

__all__ = sorted(_API)  # noqa: PLE0605 (each public name is written once, in _API)


def load_keras() -> None:
    """Import Keras, after checking that its backend is installed and with TensorFlow's start-up
    lines hidden, and the modules whose layers and schedules it must know to load the project's
    models."""
    require_backend()
    quiet_tensorflow_logs()
    for module in (".augment", ".model", ".schedules"):
        importlib.import_module(module, __name__)


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(_API[name], __name__), name)
    raise AttributeError(f"module 'alexnet_tf' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])


if not started_as_command():
    load_keras()
