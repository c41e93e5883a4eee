"""A new model or augmentation is one registered entry, found by name by the config, the command
line and training alike; the class grammar is read by one parser everywhere."""

import json

import keras
import numpy as np
import pytest

import alexnet_tf
from alexnet_tf.augment import AUGMENTATIONS
from alexnet_tf.cli import build_parser, config_from_args
from alexnet_tf.config import preset
from alexnet_tf.model import MODELS
from alexnet_tf.training import train
from data_prep import plan_subset
from data_prep.subset import choose_classes, parse_class_spec


@pytest.fixture
def toy_entries():
    seen = {"augment_calls": 0}

    @alexnet_tf.register_model("toy-mlp")
    def toy_mlp(config, num_classes, mean=None, variance=None, augmentation=None):
        inputs = keras.Input((config.image_size, config.image_size, 3))
        x = augmentation(inputs) if augmentation is not None else inputs
        x = keras.layers.Rescaling(1 / 255)(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(32, activation="relu")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
        return keras.Model(inputs, outputs, name="toy_mlp")

    class Invert(keras.layers.Layer):
        """A non-affine transform: the photographic negative of every other batch."""

        def call(self, images, training=True):
            seen["augment_calls"] += 1
            images = keras.ops.cast(images, "float32")
            return 255.0 - images if training else images

    @alexnet_tf.register_augmentation("toy-invert")
    def invert(augment, seed=None):
        return Invert()

    yield seen
    MODELS.pop("toy-mlp")
    AUGMENTATIONS.pop("toy-invert")


def test_a_registered_model_and_augmentation_train_in_quick_mode(toy_entries, synthetic_root, tmp_path):
    args = build_parser().parse_args(
        [
            "train",
            "--preset",
            "quick",
            "--data",
            str(synthetic_root),
            "--runs-dir",
            str(tmp_path),
            "--variant",
            "toy-mlp",
            "--augmentation",
            "toy-invert",
            "--epochs",
            "1",
            "--images-per-class",
            "8",
        ]
    )
    config = config_from_args(args)
    result = train(config, verbose=0)
    assert result.model.name == "toy_mlp" and np.isfinite(result.metrics["top1_accuracy"])
    assert toy_entries["augment_calls"] > 0  # the augmentation ran (traced into the pipeline or the model)
    assert keras.models.load_model(result.run_dir / "model.keras").name == "toy_mlp"


def test_unregistered_names_are_refused_with_the_registered_ones(toy_entries):
    with pytest.raises(ValueError, match=r"variant='nope'; choose one of tiny, .*toy-mlp"):
        preset("quick", variant="nope")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--augmentation", "nope"])


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("first:10", 10),
        ("10", 10),
        (10, 10),
        ("random:5", "random:5"),
        ("a,b", ["a", "b"]),
        ("n01", ["n01"]),
        (["a", "b"], ["a", "b"]),
        ("all", None),
        (None, None),
    ],
)
def test_one_parser_for_the_class_grammar(spec, expected):
    assert parse_class_spec(spec) == expected


@pytest.mark.parametrize("bad", ["first:x", "random:", "first:0", 0, -3, "", "other:3", True, []])
def test_the_class_grammar_refuses_the_same_everywhere(bad, capsys):
    with pytest.raises(ValueError, match="classes="):
        parse_class_spec(bad)
    with pytest.raises(ValueError, match="classes="):
        preset("tiny10", classes=bad)


def test_the_command_line_the_config_and_subset_agree(synthetic_root):
    args = build_parser().parse_args(["train", "--preset", "tiny10", "--classes", "first:3"])
    assert config_from_args(args).classes == preset("tiny10", classes="first:3").classes == 3
    rows = plan_subset(synthetic_root, classes="first:3")
    assert (
        sorted({r["wnid"] for r in rows})
        == choose_classes(synthetic_root, 3)
        == choose_classes(synthetic_root, "first:3")
    )


def test_a_registry_holds_names_without_importing_until_an_entry_is_looked_up():
    from alexnet_tf.registry import Registry, register_augmentation

    things = Registry("thing")
    things.register("dumps", kind="text")("json:dumps")  # a built-in: named, imported on first lookup
    things.register("own")(len)
    assert things.names() == ["dumps", "own"] and len(things) == 2 and list(things) == ["dumps", "own"]
    assert "dumps" in things and "other" not in things and things.info("dumps") == {"kind": "text"}
    assert things._entries["dumps"] == "json:dumps"  # info needs no import
    assert things["dumps"] is json.dumps and things.lookup("own") is len
    with pytest.raises(ValueError, match="unknown thing 'other'; choose one of dumps, own"):
        things.info("other")
    assert things.pop("own") is len and things.names() == ["dumps"]
    with pytest.raises(ValueError, match="feed='stream'; choose one of layer, generator"):
        register_augmentation("toy", feed="stream")
