"""AlexNet with Local Response Normalization on Tiny ImageNet, in Keras 3.

Names are imported lazily so that ``import alexnet_tf`` stays quick and the data tools
work without TensorFlow (e.g. on a JAX-only GPU machine).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "data", "select_files": "data", "make_dataset": "data", "directory_dataset": "data",
    "class_descriptions": "data",
    "DataFormatError": "tiny_imagenet",
    "alexnet_model": "model", "LocalResponseNormalization": "model", "channel_stats": "model",
    "AugmentConfig": "augment", "image_data_generator": "augment", "fast_augmenter": "augment",
    "TrainConfig": "config", "preset": "config", "train": "training", "evaluate_saved": "training",
    "evaluate_predictions": "evaluate", "prediction_table": "evaluate",
    "lr_schedule": "schedules", "plateau_callback": "schedules", "WarmupCosine": "schedules", "OneCycle": "schedules",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'alexnet_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
