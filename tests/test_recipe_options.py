"""The recipe study's options: random-resized crops, random erasing and PCA lighting on both
augmentation paths and every backend, non-overlapping pooling, weight EMA, and the confusion counts
a run writes beside its figure."""

import importlib.util
import json
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from alexnet_tf.augment import AugmentConfig, fast_augmenter, image_data_generator, pixel_pca
from alexnet_tf.config import TrainConfig, preset
from alexnet_tf.model import alexnet_model
from alexnet_tf.training import train
from conftest import REPO, tiny

STILL = {"rotation_degrees": 0, "width_shift": 0, "height_shift": 0, "shear_degrees": 0, "zoom": 0}
NO_FLIP = {**STILL, "horizontal_flip": False}


def images(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def both_paths(config, x, pca=None, seed=0):
    """The fast layer's and the classic ImageDataGenerator's output for the same settings."""
    fast = np.asarray(fast_augmenter(config, seed=seed, pca=pca)(x, training=True))
    flow = image_data_generator(config, seed=seed, pca=pca).flow(x, batch_size=len(x), shuffle=False, seed=seed)
    return {"fast": fast, "classic": np.asarray(next(flow))}


def test_random_erasing_replaces_one_rectangle_per_image():
    x = np.full((32, 64, 64, 3), 128, np.uint8)
    for path, out in both_paths(AugmentConfig(**NO_FLIP, erasing=1.0), x).items():
        changed = np.any(out != 128, axis=-1)
        for mask in changed:
            rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert 0.01 * 64 * 64 <= box <= 0.3 * 64 * 64, path  # 2-25% of the area, rounded
            assert mask.sum() >= 0.9 * box, path  # one filled rectangle, not scattered pixels
        assert out.min() >= 0 and out.max() <= 255
    none = both_paths(AugmentConfig(**NO_FLIP, erasing=0.0), x)
    assert all(np.all(out == 128) for out in none.values())


def test_pca_lighting_shifts_each_image_along_the_principal_components():
    x = np.random.default_rng(0).integers(60, 190, (64, 64, 64, 3), dtype=np.uint8)
    x[..., 1] = x[..., 0] // 2 + 60  # correlated channels, as in photographs
    values, vectors = pca = pixel_pca(x)
    assert values[0] >= values[1] >= values[2] > 0
    pixels = x.reshape(-1, 3) / 255.0
    assert np.allclose(np.cov(pixels.T, bias=True) @ vectors, vectors * values, atol=1e-5)
    for path, out in both_paths(AugmentConfig(**NO_FLIP, pca_lighting=0.1), x, pca).items():
        shift = out.astype("float64") - x
        per_image = shift.reshape(len(x), -1, 3)
        assert np.allclose(per_image, per_image[:, :1], atol=1e-3), path  # one colour shift per image
        coefficients = (per_image[:, 0] / 255.0) @ vectors / values  # the a_i of sum_i a_i l_i p_i
        assert 0.05 < coefficients.std() < 0.2, path  # drawn from N(0, 0.1)
    with pytest.raises(ValueError, match="pca"):
        fast_augmenter(AugmentConfig(pca_lighting=0.1), seed=0)


def test_random_resized_crops_zoom_in():
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8)[None, :, None], (64, 1, 3))
    x = np.repeat(ramp[None], 32, axis=0)
    for path, out in both_paths(AugmentConfig(**NO_FLIP, crop_area=0.35), x).items():
        spans = out[:, 32, -1, 0].astype(float) - out[:, 32, 0, 0]
        assert np.all(spans <= 256) and spans.mean() < 0.9 * 255, path  # a part of the ramp, stretched
        assert np.all(spans > 0.4 * 255), path  # at least sqrt(0.35 * 3/4) of the width
    same = both_paths(AugmentConfig(**NO_FLIP, crop_area=1.0), x)
    assert all(np.allclose(out, x, atol=1) for out in same.values())
    with pytest.raises(ValueError, match="crop_area"):
        AugmentConfig(crop_area=0)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_new_augmentations_run_on_jax_and_save_with_the_model(tmp_path):
    script = r"""
import os, sys, json
os.environ["KERAS_BACKEND"] = "jax"
import keras, numpy as np
from alexnet_tf.augment import AugmentConfig, fast_augmenter, pixel_pca
x = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
config = AugmentConfig(crop_area=0.35, erasing=1.0, pca_lighting=0.1)
layer = fast_augmenter(config, seed=0, pca=pixel_pca(x))
inputs = keras.Input((64, 64, 3))
model = keras.Model(inputs, layer(inputs))
out = np.asarray(model(x, training=True))
model.save(sys.argv[1])
again = keras.models.load_model(sys.argv[1])
print("RESULT " + json.dumps({"backend": keras.backend.backend(), "changed": float(np.mean(out != x)),
    "range": [float(out.min()), float(out.max())], "config": again.layers[-1].get_config()["pca_lighting"]}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.keras")], capture_output=True, text=True, cwd=REPO
    )
    line = [row for row in done.stdout.splitlines() if row.startswith("RESULT ")]
    assert line, done.stderr[-2000:]
    result = json.loads(line[0][7:])
    assert result["backend"] == "jax" and result["changed"] > 0.5 and result["config"] == 0.1
    assert 0 <= result["range"][0] and result["range"][1] <= 255


def test_non_overlapping_pooling_is_2x2_with_the_same_shapes():
    overlapping = alexnet_model(num_classes=10)
    plain = alexnet_model(num_classes=10, pooling="non-overlapping")
    pools = {
        m: [tuple(layer.pool_size) for layer in m.layers if isinstance(layer, keras.layers.MaxPooling2D)]
        for m in (overlapping, plain)
    }
    assert pools[overlapping] == [(3, 3)] * 3 and pools[plain] == [(2, 2)] * 3
    assert overlapping.count_params() == plain.count_params()
    assert overlapping.get_layer("flatten").output.shape == plain.get_layer("flatten").output.shape
    with pytest.raises(ValueError, match="pooling"):
        TrainConfig(pooling="2x2")


def test_ema_run_ends_on_the_averaged_weights_and_resumes_with_them(synthetic_root, tmp_path):
    config = tiny(synthetic_root, tmp_path / "runs", epochs=2, ema_momentum=0.9, name="ema")

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Stop()], verbose=0)
    result = train(config, verbose=0)
    assert result.metrics["resumed"]
    optimizer = result.model.optimizer
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9
    averages = optimizer._model_variables_moving_average  # what finalize_variable_values wrote back
    for weight, average in zip(result.model.trainable_weights, averages):
        assert np.allclose(keras.ops.convert_to_numpy(weight), keras.ops.convert_to_numpy(average))
    plain = train(config.replace(ema_momentum=None, name="plain"), verbose=0)
    assert not plain.model.optimizer.use_ema
    assert not np.allclose(plain.model.get_weights()[0], result.model.get_weights()[0])
    with pytest.raises(ValueError, match="ema_momentum"):
        config.replace(ema_momentum=1.0).__post_init__()


def test_new_settings_at_their_defaults_keep_the_run_name():
    base = preset("tiny200-v1")
    assert base.replace(pooling="overlapping", ema_momentum=None).run_name == base.run_name
    names = {
        base.replace(pooling="non-overlapping").run_name,
        base.replace(ema_momentum=0.99).run_name,
        base.replace(augment={**base.augment.__dict__, "erasing": 0.5}).run_name,
        base.run_name,
    }
    assert len(names) == 4


def test_a_run_writes_its_confusion_counts(finished_run):
    counts = pd.read_csv(finished_run / "confusion_val.csv", index_col=0)
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert list(counts.index) == list(counts.columns) and counts.index.name == "true"
    assert len(counts) == 10 and counts.to_numpy().sum() == 100  # the synthetic set's 10 x 10 val images
    assert np.trace(counts.to_numpy()) / 100 == pytest.approx(metrics["top1_accuracy"])
