import keras
import numpy as np
import pytest

from alexnet_tf.augment import (
    AugmentConfig,
    RandomAffine,
    affine_warp,
    batch_mixing,
    degrees_to_turns,
    fast_augmenter,
    image_data_generator,
    turns_to_degrees,
)
from alexnet_tf.augment_compare import augmentation_figure, augmented_batches
from alexnet_tf.data import load_dataset

OFF = {
    "rotation_degrees": 0,
    "width_shift": 0,
    "height_shift": 0,
    "shear_degrees": 0,
    "zoom": 0,
    "horizontal_flip": False,
}


def images(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_unit_conversions():
    assert degrees_to_turns(20) == pytest.approx(20 / 360)
    assert turns_to_degrees(degrees_to_turns(33.0)) == pytest.approx(33.0)
    assert keras.layers.RandomRotation(degrees_to_turns(90)).factor == (-0.25, 0.25)


def test_same_config_drives_both_paths():
    config = AugmentConfig(rotation_degrees=15, width_shift=0.1, zoom=0.3, shear_degrees=5, fill_mode="reflect")
    gen = image_data_generator(config)
    assert (gen.rotation_range, gen.width_shift_range, gen.shear_range, gen.fill_mode) == (15, 0.1, 5, "reflect")
    assert list(gen.zoom_range) == [0.7, 1.3]
    layer = fast_augmenter(config)
    assert layer.config == config
    with pytest.raises(ValueError, match="fill_mode"):
        AugmentConfig(fill_mode="mirror-ish")


def test_identity_when_everything_is_off():
    x = images()
    out = np.asarray(RandomAffine(**OFF, seed=1)(x, training=True))
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_flip_really_flips():
    x = images(64)
    out = np.asarray(RandomAffine(**{**OFF, "horizontal_flip": True}, seed=3)(x, training=True))
    flipped = [np.allclose(o, img[:, ::-1], atol=1e-3) for o, img in zip(out, x)]
    same = [np.allclose(o, img, atol=1e-3) for o, img in zip(out, x)]
    assert all(f or s for f, s in zip(flipped, same)) and 16 < sum(flipped) < 48


def test_integer_shift_matches_numpy_and_fill_modes():
    x = images(2)
    transform = np.array([[1, 0, 3, 0, 1, 0]] * 2, np.float32)  # output x reads input x + 3
    out = np.asarray(affine_warp(x, transform, "nearest"))
    np.testing.assert_allclose(out[:, :, :61], x[:, :, 3:], atol=1e-4)
    np.testing.assert_allclose(out[:, :, 61:], np.repeat(x[:, :, 63:64], 3, axis=2), atol=1e-4)
    assert np.all(np.asarray(affine_warp(x, transform, "constant"))[:, :, 61:] == 0)
    np.testing.assert_allclose(np.asarray(affine_warp(x, transform, "wrap"))[:, :, 61:], x[:, :, :3], atol=1e-4)


def test_output_range_dtype_and_no_nan():
    x = images(16)
    for config in (AugmentConfig(), AugmentConfig(crop_padding=4, fill_mode="constant", rotation_degrees=45)):
        out = np.asarray(fast_augmenter(config, seed=0)(x, training=True))
        assert out.dtype == np.float32 and out.shape == x.shape
        assert not np.isnan(out).any() and out.min() >= 0 and out.max() <= 255
        assert not np.allclose(out, x)
    inference = np.asarray(fast_augmenter(seed=0)(x, training=False))
    np.testing.assert_array_equal(inference, x)


def test_seeded_runs_repeat():
    x = images()
    a = np.asarray(fast_augmenter(seed=7)(x, training=True))
    b = np.asarray(fast_augmenter(seed=7)(x, training=True))
    c = np.asarray(fast_augmenter(seed=8)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    g1 = image_data_generator(seed=5).flow(x, batch_size=8, shuffle=False, seed=5)
    g2 = image_data_generator(seed=5).flow(x, batch_size=8, shuffle=False, seed=5)
    np.testing.assert_array_equal(next(g1), next(g2))


@pytest.mark.parametrize("path", ["fast", "classic"])
def test_labels_stay_paired(path, synthetic_root):
    x, y, _ = load_dataset(synthetic_root, "val", cache=False)
    # Make each image's label readable from its pixels: a flat colour per class survives any warp.
    x = np.repeat(np.repeat((y * 25).astype(np.uint8)[:, None, None, None], 64, 1), 64, 2).repeat(3, 3)
    batches = augmented_batches(x, y, path=path, batch_size=32, seed=0)
    bx, by = next(iter(batches))
    bx, by = np.asarray(bx), np.asarray(by)
    assert bx.shape == (32, 64, 64, 3) and len(by) == 32
    np.testing.assert_allclose(bx[:, 32, 32, 0], by * 25, atol=1)


def test_fast_path_as_first_model_layer():
    from alexnet_tf.model import alexnet_model

    model = alexnet_model(num_classes=3, variant="mini", augmentation=fast_augmenter(seed=0))
    x = images(4)
    a, b = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)  # inactive at inference
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, np.zeros(4), verbose=0)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_gives_soft_labels(kind):
    mix = batch_mixing(kind, num_classes=4, seed=0)
    out_x, out_y = mix(images(8), np.arange(8) % 4)
    out_y = np.asarray(out_y)
    assert np.asarray(out_x).shape == (8, 64, 64, 3) and out_y.shape == (8, 4)
    np.testing.assert_allclose(out_y.sum(1), 1, rtol=1e-5)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_works_under_mixed_bfloat16_in_a_tf_data_map(kind):
    """The feed maps the mixing over tf.data batches while the run's mixed_bfloat16 policy is set."""
    import tensorflow as tf

    from alexnet_tf.training import precision_policy

    with precision_policy("mixed_bfloat16"):
        mix = batch_mixing(kind, num_classes=4, seed=0)
        batches = tf.data.Dataset.from_tensor_slices((images(8), np.arange(8) % 4)).batch(4).map(mix)
        out = [(np.asarray(x), np.asarray(y)) for x, y in batches]
    assert [x.dtype for x, _ in out] == [np.float32] * 2
    np.testing.assert_allclose(np.concatenate([y for _, y in out]).sum(1), 1, rtol=1e-5)


def test_augmentation_figure(tmp_path):
    fig = augmentation_figure(images(2), samples=2, path=tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 5000 and len(fig.axes) == 10


@pytest.mark.parametrize(
    "augmentation, mixing, pca",
    [("classic", None, 0.0), ("classic", None, 0.1), ("fast", "mixup", 0.1), ("none", "cutmix", 0.1)],
)
def test_each_way_an_augmentation_feeds_training_trains(
    augmentation, mixing, pca, synthetic_root, tmp_path, no_run_figures
):
    """The generator (classic), the layer (fast) and none, with mixing and PCA lighting, each feed a run."""
    from alexnet_tf.training import train
    from conftest import tiny

    config = tiny(synthetic_root, tmp_path, augmentation=augmentation, mixing=mixing)
    config = config.replace(augment=AugmentConfig(pca_lighting=pca))
    result = train(config, verbose=0)
    assert result.metrics["epochs"] == 1 and np.isfinite(result.history["loss"]).all()


def test_a_generator_refuses_mixing_before_a_model_is_built(synthetic_root, tmp_path, monkeypatch):
    from alexnet_tf import training
    from conftest import tiny

    monkeypatch.setattr(training, "build_model", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(ValueError, match="mixing .* works with augmentation='fast' or 'none'"):
        training.train(tiny(synthetic_root, tmp_path, augmentation="classic", mixing="mixup"), verbose=0)
