"""Precision and XLA chosen by the hardware, and training that stays finite under mixed precision."""

import json

import keras
import numpy as np
import pytest

from alexnet_tf.config import preset
from alexnet_tf.hardware import choose_jit_compile, choose_precision, cpu_flags, describe_device
from alexnet_tf.model import LocalResponseNormalization
from alexnet_tf.training import train


@pytest.mark.parametrize(
    "capability,flags,expected",
    [
        ((7, 5), set(), "mixed_float16"),  # T4: fast float16, no fast bfloat16
        ((8, 0), set(), "mixed_bfloat16"),  # A100
        ((9, 0), {"avx2"}, "mixed_bfloat16"),  # H100: the GPU decides, not the host CPU
        (None, {"avx2", "avx512f", "avx512_bf16"}, "mixed_bfloat16"),  # a CPU with native bfloat16
        (None, {"avx2", "amx_bf16", "amx_tile"}, "mixed_bfloat16"),
        (None, {"avx2", "avx512f"}, "float32"),  # AVX-512 without bf16: bfloat16 would be emulated
        (None, set(), "float32"),
    ],
)
def test_auto_precision_follows_the_hardware(capability, flags, expected):
    assert choose_precision("auto", capability, flags) == expected


def test_explicit_precision_wins_and_unknown_is_refused():
    assert choose_precision("float32", (9, 0), set()) == "float32"
    assert choose_precision("mixed_float16", None, {"avx512_bf16"}) == "mixed_float16"
    with pytest.raises(ValueError, match="precision='half'"):
        choose_precision("half")
    with pytest.raises(ValueError, match="precision"):
        preset("quick", precision="fp16")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_xla_follows_device_and_backend_unless_asked():
    assert choose_jit_compile(None, on_gpu=False) is False
    assert choose_jit_compile(None, on_gpu=True) is True
    assert choose_jit_compile(True, on_gpu=False) is True
    assert choose_jit_compile(None, on_gpu=False, backend="jax") is True  # eager JAX is many times slower
    assert choose_jit_compile(None, on_gpu=True, backend="torch") is False
    assert choose_jit_compile(False, on_gpu=False, backend="jax") is False


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_lrn_sum_stays_in_range_under_mixed_precision(policy):
    # Activations of 300 square to 90,000 per channel, past float16's largest value (65,504):
    # the window sum must still be taken in float32.
    x = np.full((2, 4, 4, 8), 300.0, dtype="float32")
    expected = LocalResponseNormalization()(x)
    layer = LocalResponseNormalization(dtype=policy)
    out = layer(keras.ops.cast(x, layer.compute_dtype))
    assert keras.backend.standardize_dtype(out.dtype) == layer.compute_dtype
    out = np.asarray(keras.ops.cast(out, "float32"))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, np.asarray(expected), rtol=1e-2)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_short_run_under_mixed_precision_ends_finite(synthetic_root, tmp_path, precision):
    config = preset(
        "quick",
        data=str(synthetic_root),
        runs_dir=str(tmp_path),
        epochs=2,
        images_per_class=6,
        batch_size=20,
        precision=precision,
    )
    result = train(config, verbose=0)
    assert np.isfinite(result.history["loss"]).all() and np.isfinite(result.history["val_loss"]).all()
    assert json.loads((result.run_dir / "config.json").read_text())["precision"] == precision
    assert result.metrics["precision"] == precision
    lrn = result.model.get_layer("lrn1")
    assert lrn.dtype_policy.name == precision
    probe = keras.Model(result.model.input, lrn.output)
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    out = np.asarray(keras.ops.cast(probe(images), "float32"))
    assert np.isfinite(out).all() and np.abs(out).max() > 0
    assert keras.mixed_precision.global_policy().name == "float32"  # the caller's policy is restored


def test_auto_precision_is_recorded_and_kept_on_other_hardware(synthetic_root, tmp_path, monkeypatch):
    from alexnet_tf import config as config_module  # where a run's config is resolved (TrainConfig.for_run)

    config = preset("quick", data=str(synthetic_root), runs_dir=str(tmp_path), epochs=1, images_per_class=6)
    result = train(config, verbose=0)
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert recorded["precision"] == choose_precision("auto")
    assert recorded["jit_compile"] is choose_jit_compile(None, describe_device()[1])
    # The same command on a machine where auto means something else reloads the run, not refuses it.
    other = "mixed_float16" if recorded["precision"] != "mixed_float16" else "float32"
    monkeypatch.setattr(config_module, "choose_precision", lambda *args, **kwargs: other)
    monkeypatch.setattr(config_module, "choose_jit_compile", lambda *args, **kwargs: not recorded["jit_compile"])
    again = train(config, verbose=0)
    assert again.run_dir == result.run_dir and again.metrics == result.metrics
