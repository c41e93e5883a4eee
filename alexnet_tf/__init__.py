"""AlexNet with Local Response Normalization on Tiny ImageNet, in Keras 3.

``import alexnet_tf`` imports Keras and registers the project's layers and schedules, so that
``keras.models.load_model`` reads every model the project saved. Choose the backend
(``KERAS_BACKEND``) before importing it. The data tools (``data_prep``) need neither this
package nor Keras. ``train`` and ``evaluate_saved`` are imported on first use (with pandas
and matplotlib).
"""

import importlib

from .hardware import quiet_tensorflow_logs, require_backend

# Before Keras loads: a missing backend package is one clear error, and a CPU machine shows no
# CUDA probe lines (unless TF_CPP_MIN_LOG_LEVEL is set, which is then left as it is).
require_backend()
quiet_tensorflow_logs()

from data_prep.images import class_descriptions, load_dataset, select_files
from data_prep.tiny_imagenet import DataFormatError

from .augment import AugmentConfig, fast_augmenter, image_data_generator, register_augmentation
from .config import TrainConfig, preset
from .data import directory_dataset
from .evaluate import evaluate_predictions, prediction_table
from .feed import make_dataset
from .model import LocalResponseNormalization, alexnet_model, channel_stats, register_model
from .schedules import OneCycle, WarmupCosine, learning_rate, lr_schedule, plateau_callback

__version__ = "0.1.0"

_LAZY = {"train": "training", "evaluate_saved": "saved_run"}

__all__ = [
    "AugmentConfig",
    "DataFormatError",
    "LocalResponseNormalization",
    "OneCycle",
    "TrainConfig",
    "WarmupCosine",
    "alexnet_model",
    "channel_stats",
    "class_descriptions",
    "directory_dataset",
    "evaluate_predictions",
    "evaluate_saved",
    "fast_augmenter",
    "image_data_generator",
    "learning_rate",
    "load_dataset",
    "lr_schedule",
    "make_dataset",
    "plateau_callback",
    "prediction_table",
    "preset",
    "register_augmentation",
    "register_model",
    "select_files",
    "train",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'alexnet_tf' has no attribute {name!r}")
