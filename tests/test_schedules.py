import functools

import keras
import numpy as np
import pytest

from alexnet_tf.schedules import OneCycle, WarmupCosine, lr_schedule, plateau_callback


def test_step_decay_reaches_every_drop():
    assert [lr_schedule(e) for e in (0, 74, 75, 99, 100, 150)] == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    custom = functools.partial(lr_schedule, base_lr=0.1, drops=(10, 20), factor=0.1)
    assert custom(9, 0.1) == 0.1 and custom(10, 0.1) == pytest.approx(0.01) and custom(25) == pytest.approx(0.001)
    with pytest.raises(ValueError):
        lr_schedule(-1)


def test_step_decay_drives_keras_callback():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1.0), "mse")
    callback = keras.callbacks.LearningRateScheduler(functools.partial(lr_schedule, drops=(2,), base_lr=0.2))
    seen = []
    log = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(float(model.optimizer.learning_rate)))
    model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=4, verbose=0, callbacks=[callback, log])
    np.testing.assert_allclose(seen, [0.2, 0.2, 0.1, 0.1])


def test_plateau_divides_by_ten():
    cb = plateau_callback()
    assert cb.factor == 0.1 and cb.monitor == "val_loss"


def test_warmup_cosine_values():
    s = WarmupCosine(peak_lr=0.1, total_steps=110, warmup_steps=10, final_lr=0.001)
    values = [float(s(step)) for step in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.0, 0.05, 0.1, 0.0505, 0.001, 0.001], rtol=1e-5, atol=1e-7)
    assert WarmupCosine.from_config(s.get_config()).get_config() == s.get_config()


def test_one_cycle_values():
    s = OneCycle(max_lr=0.4, total_steps=100, pct_start=0.25, div_factor=20, final_div_factor=100)
    values = [float(s(step)) for step in (0, 25, 100)]
    np.testing.assert_allclose(values, [0.02, 0.4, 0.0002], rtol=1e-5)
    assert float(s(12.5)) == pytest.approx((0.02 + 0.4) / 2, rel=1e-5)
    assert float(s(62.5)) == pytest.approx((0.4 + 0.0002) / 2, rel=1e-5)
    optimizer = keras.optimizers.SGD(s)
    assert float(optimizer.learning_rate) == pytest.approx(0.02)


def test_training_schedules_are_keras_ones_with_the_rates_of_before():
    from alexnet_tf.config import preset
    from alexnet_tf.schedules import learning_rate

    steps = 7
    config = preset("tiny200", epochs=5)
    cosine = learning_rate(config, steps)
    assert isinstance(cosine, keras.optimizers.schedules.CosineDecay)
    # A run started with WarmupCosine resumes on the very same rates.
    before = WarmupCosine(config.learning_rate, 5 * steps, config.warmup_epochs * steps)
    np.testing.assert_allclose(
        [float(cosine(s)) for s in range(5 * steps + 3)],
        [float(before(s)) for s in range(5 * steps + 3)],
        rtol=1e-6,
        atol=1e-8,
    )
    step = learning_rate(config.replace(schedule="step", lr_drops=[2, 4]), steps)
    assert isinstance(step, keras.optimizers.schedules.PiecewiseConstantDecay)
    # Epoch e's steps have lr_schedule(e): the callback's rates, step by step.
    expected = [lr_schedule(s // steps, base_lr=0.1, drops=(2, 4)) for s in range(5 * steps)]
    np.testing.assert_allclose([float(step(s)) for s in range(5 * steps)], expected, rtol=1e-6)
    assert learning_rate(config.replace(schedule="constant"), steps) == config.learning_rate
