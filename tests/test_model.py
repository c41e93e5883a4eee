import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from alexnet_tf.model import LocalResponseNormalization, alexnet_model, channel_stats, count_macs

REPO = Path(__file__).resolve().parents[1]


def paper_lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """The paper's formula, a loop over channels in float64."""
    a = a.astype(np.float64)
    channels = a.shape[-1]
    out = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[..., i] = a[..., i] / (k + alpha * np.square(a[..., lo : hi + 1]).sum(-1)) ** beta
    return out


@pytest.mark.parametrize("shape", [(2, 7, 7, 16), (3, 5, 5, 96), (1, 4, 4, 3), (2, 6, 6, 1)])
@pytest.mark.parametrize(
    "params",
    [
        {"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75},
        {"depth_radius": 2, "bias": 1.0, "alpha": 2e-5, "beta": 0.75},
        {"depth_radius": 3, "bias": 1.0, "alpha": 1e-3, "beta": 0.5},
    ],
)
def test_lrn_matches_tf_and_the_paper(shape, params):
    x = np.random.default_rng(0).normal(0, 5, shape).astype(np.float32)
    ours = np.asarray(LocalResponseNormalization(**params)(x))
    reference = tf.nn.local_response_normalization(x, **params).numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-6)
    n = 2 * params["depth_radius"] + 1
    np.testing.assert_allclose(ours, paper_lrn(x, n, params["bias"], params["alpha"], params["beta"]), rtol=1e-5)


def test_lrn_really_normalises():
    x = np.full((1, 1, 1, 8), 100.0, np.float32)
    out = np.asarray(LocalResponseNormalization(bias=1.0, alpha=1e-2)(x))
    # a middle channel sees 5 neighbours, an edge channel 3: (1 + 0.01 * 5 * 1e4) ** 0.75 vs 3e4
    assert out[0, 0, 0, 4] == pytest.approx(100 / 501**0.75, rel=1e-5)
    assert out[0, 0, 0, 0] == pytest.approx(100 / 301**0.75, rel=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_lrn_under_mixed_precision(policy):
    x = np.random.default_rng(1).normal(0, 50, (2, 4, 4, 32)).astype(np.float32)
    expected = tf.nn.local_response_normalization(x, 2, 2.0, 1e-4, 0.75).numpy()
    layer = LocalResponseNormalization(dtype=policy)
    out = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    np.testing.assert_allclose(np.asarray(keras.ops.cast(out, "float32")), expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(
    "variant,classes,params,macs",
    [
        ("tiny", 200, 4_337_224, 110_239_744),
        ("mini", 200, 5_171_656, 142_577_664),
        ("original", 1000, 62_378_344, 1_135_256_096),
    ],
)
def test_variant_shapes_and_sizes(variant, classes, params, macs):
    model = alexnet_model(num_classes=classes, variant=variant)
    size = {"original": 227}.get(variant, 64)
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, classes)
    assert model.count_params() == params and count_macs(model) == macs
    assert sum(isinstance(layer, LocalResponseNormalization) for layer in model.layers) == 2


def test_options_change_the_network():
    plain = alexnet_model(num_classes=10, lrn=False)
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in plain.layers)
    bn = alexnet_model(num_classes=10, batch_norm=True, dropout=0.0)
    names = [layer.name for layer in bn.layers]
    assert "bn1" in names and not any(n.startswith("dropout") for n in names)
    assert len(alexnet_model(num_classes=10, weight_decay=5e-4).losses) == 8
    with pytest.raises(ValueError, match="unknown variant 'resnet'"):
        alexnet_model(variant="resnet")
    with pytest.raises(ValueError, match="needs the training set's mean"):
        alexnet_model(preprocessing="standardize")


def test_preprocessing_takes_uint8():
    x = np.random.default_rng(2).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    mean, var = channel_stats(x, chunk=10)
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(0))
    np.testing.assert_allclose(var, x.reshape(-1, 3).var(0))
    model = alexnet_model(
        (8, 8, 3), num_classes=3, variant="mini", preprocessing="standardize", mean=mean, variance=var
    )
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_a_few_steps_reduce_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = np.arange(32) % 4
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30]])
    x = np.clip(colours[y][:, None, None, :] + rng.normal(0, 40, (32, 64, 64, 3)), 0, 255).astype(np.uint8)
    model = alexnet_model(num_classes=4, dropout=0.0, weight_decay=0)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * before


def test_save_and_load_in_safe_mode(tmp_path):
    model = alexnet_model(num_classes=5, lrn_params={"alpha": 2e-4})
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True: would refuse any Lambda layer
    x = np.random.default_rng(3).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    assert loaded.get_layer("lrn1").alpha == 2e-4


def test_builds_and_trains_under_jax():
    pytest.importorskip("jax")
    code = (
        "import numpy as np, keras; from alexnet_tf.model import alexnet_model;"
        "m = alexnet_model(num_classes=3); m.compile('sgd', 'sparse_categorical_crossentropy');"
        "m.fit(np.zeros((4, 64, 64, 3), 'uint8'), np.zeros(4), verbose=0);"
        "print(keras.backend.backend(), m.count_params())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["jax", str(alexnet_model(num_classes=3).count_params())]
