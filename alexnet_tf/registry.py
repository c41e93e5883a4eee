"""The names a config chooses from: the networks (``MODELS``, ``TrainConfig.variant``) and the
augmentations (``AUGMENTATIONS``, ``TrainConfig.augmentation``), each a registry of name ->
entry, filled by a decorator (the shape of big_vision's ``Registry``).

This module imports no Keras, so that the command line lists the names, and refuses a wrong
one, before Keras loads. The built-in entries are named here by "module:function" and imported
on first lookup; an entry registered with ``register_model`` or ``register_augmentation`` is the
function itself."""

from __future__ import annotations

import importlib


class Registry:
    """Entries by name, each with facts about it (``info``); reads like a dict of the entries."""

    def __init__(self, kind: str):
        self.kind = kind  # what an entry is, for messages: "model", "augmentation"
        self._entries: dict = {}
        self._info: dict = {}

    def register(self, name: str, **info):
        """A decorator registering its function under ``name``, with ``info`` beside it. The
        function may be given as "module:function", imported when it is first looked up."""

        def register(entry):
            self._entries[name] = entry
            self._info[name] = info
            return entry

        return register

    def lookup(self, name: str):
        entry = self._entries[self._known(name)]
        if isinstance(entry, str):
            module, function = entry.split(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), function)
        return entry

    def info(self, name: str) -> dict:
        return self._info[self._known(name)]

    def _known(self, name: str) -> str:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        return name

    def names(self) -> list[str]:
        return list(self._entries)

    def pop(self, name: str, *default):
        self._info.pop(name, None)
        return self._entries.pop(name, *default)

    def __getitem__(self, name: str):
        return self.lookup(name)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


# --- the networks ---------------------------------------------------------------------------

# name -> builder(config, num_classes, mean, variance, augmentation) -> keras.Model, where config is a
# TrainConfig, mean and variance the training images' channel statistics, and augmentation a
# layer to put first (or None). A new network is one entry: decorate its builder.
MODELS = Registry("model")


def register_model(name: str):
    """Register a model builder under ``name``, the value of ``TrainConfig.variant`` that selects it."""
    return MODELS.register(name)


# Each AlexNet variant: conv layers as (filters, kernel, stride, LRN after?, max-pool after?), then
# dense widths; ``alexnet_tf.model.alexnet_model`` builds them.
VARIANTS = {
    # AlexNet adapted to 64x64. The original's 11x11/4 first layer takes 227x227 to 55x55 (then
    # 27 and 13 after pooling); on 64x64 it would leave 15x15 and lose most of the detail. Here a
    # 5x5/2 first layer keeps 32x32, the paper's overlapping 3x3/2 pooling gives 16, 8 and 4, and
    # the widths are about half the original's: 4.3M parameters and 110M multiply-accumulates
    # per image at 200 classes (the original: 62M and 1.1G), so it trains in minutes even on a CPU.
    "tiny": {
        "input_size": 64,
        "convs": [
            (64, 5, 2, True, True),
            (128, 5, 1, True, True),
            (192, 3, 1, False, False),
            (192, 3, 1, False, False),
            (128, 3, 1, False, True),
        ],
        "dense": [1024, 1024],
        "min_size": 8,
    },
    # "tiny" with wider conv2-conv5 (64-192-256-256-192, the widths of the reference Tiny-10 run):
    # 1.6x the multiply-accumulates, for the 200-class question whether width pays for its cost.
    "wide": {
        "input_size": 64,
        "convs": [
            (64, 5, 2, True, True),
            (192, 5, 1, True, True),
            (256, 3, 1, False, False),
            (256, 3, 1, False, False),
            (192, 3, 1, False, True),
        ],
        "dense": [1024, 1024],
        "min_size": 8,
    },
    # The 2012 paper's network (one tower, no grouping) for 227x227 inputs.
    "original": {
        "input_size": 227,
        "convs": [
            (96, 11, 4, True, True),
            (256, 5, 1, True, True),
            (384, 3, 1, False, False),
            (384, 3, 1, False, False),
            (256, 3, 1, False, True),
        ],
        "dense": [4096, 4096],
        "min_size": 67,
    },
    # The small network many users build on modest hardware.
    "mini": {
        "input_size": 64,
        "convs": [
            (32, 5, 1, True, True),
            (64, 5, 1, True, True),
            (128, 3, 1, False, False),
            (128, 3, 1, False, False),
            (64, 3, 1, False, True),
        ],
        "dense": [1024, 512],
        "min_size": 8,
    },
}

for _variant in VARIANTS:  # every AlexNet variant: a new one is one entry of VARIANTS
    register_model(_variant)("alexnet_tf.model:build_alexnet")


# --- the augmentations ----------------------------------------------------------------------

# name -> factory(augment: AugmentConfig, seed) -> a Keras layer on uint8 batches (active when
# training=True, returning float pixel values in 0..255), or None for no augmentation. It runs in
# tf.data on a TensorFlow CPU and first in the model elsewhere (feed "layer"). A new transform is
# one entry. "classic" feeds training otherwise (feed "generator"): its factory(augment, seed, pca)
# returns an ImageDataGenerator, whose flow makes the batches (TensorFlow only).
AUGMENTATIONS = Registry("augmentation")
FEEDS = ("layer", "generator")


def register_augmentation(name: str, feed: str = "layer"):
    """Register an augmentation factory under ``name``, the value of ``TrainConfig.augmentation``;
    ``feed`` says how it feeds training (see ``augmentation_feed``)."""
    if feed not in FEEDS:
        raise ValueError(f"feed={feed!r}; choose one of {', '.join(FEEDS)}")
    return AUGMENTATIONS.register(name, feed=feed)


def augmentation_feed(name: str) -> str:
    """How augmentation ``name`` feeds training: "layer" (a Keras layer, mapped over the tf.data
    batches or put first in the model) or "generator" (an ImageDataGenerator making the batches)."""
    return AUGMENTATIONS.info(name)["feed"]


register_augmentation("fast")("alexnet_tf.augment:fast_augmenter")
register_augmentation("none")("alexnet_tf.augment:no_augmentation")
register_augmentation("classic", feed="generator")("alexnet_tf.augment:image_data_generator")
