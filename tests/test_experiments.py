import keras
import numpy as np
import pandas as pd
import pytest

from alexnet_tf.config import preset
from alexnet_tf.experiments import cross_validate, grid_search, lrn_ablation, transfer
from alexnet_tf.model import alexnet_model, load_matching_weights
from data_prep import make_folds
from data_prep.tiny_imagenet import dataset_classes

# The experiments' tables are under test here; notebook 06 runs these experiments with their figures.
pytestmark = pytest.mark.usefixtures("no_run_figures")


@pytest.fixture
def tiny(synthetic_root, tmp_path):
    return preset(
        "quick", data=str(synthetic_root), runs_dir=str(tmp_path / "runs"), epochs=1, images_per_class=6, batch_size=16
    )


def test_folds_partition_the_images(synthetic_root, tmp_path):
    folds = make_folds(synthetic_root, tmp_path / "folds", k=3, classes="first:4", images_per_class=9, seed=1)
    manifests = [pd.read_csv(f / "manifest.csv") for f in folds]
    vals = [set(m.loc[m.split == "val", "source"]) for m in manifests]
    assert all(len(v) == 12 for v in vals) and not (vals[0] & vals[1]) and not (vals[1] & vals[2])
    assert all(set(m["source"]) == set(manifests[0]["source"]) for m in manifests)
    assert make_folds(synthetic_root, tmp_path / "folds", k=3, classes="first:4", images_per_class=9, seed=1) == folds


def test_matching_weights_skip_the_classifier(tmp_path):
    source = alexnet_model(num_classes=7, variant="mini")
    source.save(tmp_path / "src.keras")
    target = alexnet_model(num_classes=3, variant="mini")
    assert load_matching_weights(target, tmp_path / "src.keras") == 7  # 5 conv + 2 dense, not the logits
    np.testing.assert_array_equal(
        target.get_layer("conv3").get_weights()[0], source.get_layer("conv3").get_weights()[0]
    )
    source.save_weights(tmp_path / "src.weights.h5")
    again = alexnet_model(num_classes=3, variant="mini")
    assert load_matching_weights(again, tmp_path / "src.weights.h5") > 0
    np.testing.assert_array_equal(again.get_layer("fc7").get_weights()[0], source.get_layer("fc7").get_weights()[0])


@pytest.mark.slow
def test_grid_search_and_lrn_ablation(tiny):
    table = grid_search(tiny, {"learning_rate": [1e-3, 3e-3], "lrn": [True]})
    assert len(table) == 2 and set(table["learning_rate"]) == {1e-3, 3e-3}
    assert table["top1_accuracy"].is_monotonic_decreasing
    runs, summary = lrn_ablation(tiny, seeds=(0,))
    assert list(runs["lrn"]) == [True, False] and len(summary) == 2


def test_cross_validate(tiny, synthetic_root, tmp_path):
    folds = make_folds(synthetic_root, tmp_path / "folds", k=2, classes="first:3", images_per_class=8)
    table = cross_validate(tiny.replace(images_per_class=None), folds)
    assert list(table["fold"]) == [0, 1] and table["top1_accuracy"].between(0, 1).all()


@pytest.mark.slow
def test_transfer_freezes_then_fine_tunes(tiny, synthetic_root):
    classes = dataset_classes(synthetic_root)
    table = transfer(tiny.replace(classes=classes[2:]), tiny.replace(classes=classes[:2]), head_epochs=1)
    assert list(table["stage"]) == [
        "pretrain (other classes)",
        "fine-tune: frozen features",
        "fine-tune: whole network",
        "target classes from scratch",
    ]
    runs = dict(zip(table["stage"], table["run"]))
    base = keras.models.load_model(f"{tiny.runs_dir}/{runs['pretrain (other classes)']}/model.keras")
    head = keras.models.load_model(f"{tiny.runs_dir}/{runs['fine-tune: frozen features']}/model.keras")
    full = keras.models.load_model(f"{tiny.runs_dir}/{runs['fine-tune: whole network']}/model.keras")
    conv = lambda m: m.get_layer("conv2").get_weights()[0]
    np.testing.assert_array_equal(conv(head), conv(base))  # frozen in the first stage
    assert not np.array_equal(conv(full), conv(head))  # trained in the second
