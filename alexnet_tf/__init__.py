"""AlexNet with Local Response Normalization on Tiny ImageNet, in Keras 3.

Names are imported lazily so that ``import alexnet_tf`` stays quick and the data tools
work without TensorFlow (e.g. on a JAX-only GPU machine).
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "data",
    "select_files": "data",
    "make_dataset": "data",
    "directory_dataset": "data",
    "class_descriptions": "data",
    "DataFormatError": "tiny_imagenet",
    "alexnet_model": "model",
    "LocalResponseNormalization": "model",
    "channel_stats": "model",
    "AugmentConfig": "augment",
    "image_data_generator": "augment",
    "fast_augmenter": "augment",
    "TrainConfig": "config",
    "preset": "config",
    "train": "training",
    "evaluate_saved": "training",
    "evaluate_predictions": "evaluate",
    "prediction_table": "evaluate",
    "lr_schedule": "schedules",
    "learning_rate": "schedules",
    "plateau_callback": "schedules",
    "WarmupCosine": "schedules",
    "OneCycle": "schedules",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'alexnet_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


def _register_keras_objects():
    """Import the modules that register the project's Keras classes (LRN, augmentation, schedules),
    so that ``keras.models.load_model`` reads any model the project saved."""
    importlib.import_module(f"{__name__}.model")
    importlib.import_module(f"{__name__}.augment")
    importlib.import_module(f"{__name__}.schedules")


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Runs ``_register_keras_objects`` right after ``keras`` is first imported, so that
    ``import alexnet_tf`` alone (before or after ``import keras``) is enough to load a saved model,
    without importing Keras, and its backend, before the user has chosen one."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def load_then_register(module):
                load(module)
                _register_keras_objects()

            spec.loader.exec_module = load_then_register
        return spec


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(isinstance(f, _RegisterAfterKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKerasImport())
