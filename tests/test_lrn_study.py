"""The LRN study: paired runs that differ in LRN alone, and the paired effect with its interval."""

import json
import shlex
import sys

import numpy as np
import pytest

from alexnet_tf.cli import build_parser, config_from_args
from alexnet_tf.config import preset
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import lrn_study


def config_of(name):
    args = build_parser().parse_args(shlex.split(lrn_study.shell_command(name))[3:])  # after "python -m alexnet_tf"
    return config_from_args(args)


def test_paired_effect_on_a_known_case():
    # Differences 2, 3, 1 points: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2 df) = 4.3027.
    effect = lrn_study.paired_effect([0.52, 0.53, 0.51], [0.50, 0.50, 0.50])
    assert effect["n"] == 3
    assert effect["mean"] == pytest.approx(0.02)
    assert effect["se"] == pytest.approx(0.01 / np.sqrt(3))
    assert effect["low"] == pytest.approx(0.02 - 4.302653 * 0.01 / np.sqrt(3), abs=1e-6)
    assert effect["high"] == pytest.approx(0.02 + 4.302653 * 0.01 / np.sqrt(3), abs=1e-6)
    assert lrn_study.verdict("x", effect) == (
        "x: LRN's effect lies between -0.5 and +4.5 points: no effect is ruled out in that range "
        "(95% interval, 3 paired seeds)."
    )
    tight = lrn_study.paired_effect([0.52, 0.521, 0.519, 0.52], [0.50, 0.50, 0.50, 0.50])
    assert lrn_study.verdict("x", tight).startswith("x: LRN adds between 1.9 and 2.1 points")
    costs = lrn_study.paired_effect([0.48, 0.481, 0.479], [0.50, 0.50, 0.50])
    assert "LRN costs between" in lrn_study.verdict("x", costs)
    with pytest.raises(ValueError, match="at least 2"):
        lrn_study.paired_effect([0.5], [0.4])


def test_each_pair_differs_in_lrn_alone():
    base = config_of("a-s0")
    assert base == preset(
        "tiny200-v1",
        data=base.data,
        epochs=15,
        images_per_class=None,
        allow_shared_images=True,
        precision="mixed_bfloat16",
        jit_compile=False,
        name=base.name,
    )
    assert base.batch_norm and base.lrn and base.schedule == "cosine" and base.val_split == "val"
    names = lrn_study.runs()
    for seed in lrn_study.SEEDS:
        a, b = config_of(f"a-s{seed}"), config_of(f"b-s{seed}")
        assert {d.split(":")[0] for d in a.differences(b)} == {"lrn", "name"} and a.seed == seed
    for setting in lrn_study.SWEEP:
        c, d = config_of(f"sweep-{setting}-c"), config_of(f"sweep-{setting}-d")
        assert {x.split(":")[0] for x in c.differences(d)} == {"lrn", "name"}
        assert (c.batch_norm, c.dropout, c.lrn, c.seed) == (False, 0.5, True, lrn_study.SWEEP_SEED)
        assert {x.split(":")[0] for x in base.differences(c)} <= {
            "batch_norm",
            "dropout",
            "optimizer",
            "learning_rate",
            "seed",
            "name",
        }
    assert lrn_study.SWEEP_SEED not in lrn_study.SEEDS and len(lrn_study.SWEEP) <= 3
    assert len(lrn_study.SEEDS) >= 3 and len(set(names)) == len(names)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_the_same_seed_gives_the_same_initial_weights_with_and_without_lrn(batch_norm):
    import keras

    from alexnet_tf.model import alexnet_model

    def initial(lrn):
        keras.utils.set_random_seed(7)
        model = alexnet_model(num_classes=100, lrn=lrn, batch_norm=batch_norm, dropout=0.5)
        return {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}

    with_lrn, without = initial(True), initial(False)
    assert with_lrn.keys() == without.keys()
    assert all(np.array_equal(with_lrn[k], without[k]) for k in with_lrn)
    keras.utils.set_random_seed(8)
    other = alexnet_model(num_classes=100, lrn=True, batch_norm=batch_norm, dropout=0.5)
    assert not np.array_equal(keras.ops.convert_to_numpy(other.weights[0]), with_lrn[other.weights[0].path])


def test_the_table_gives_each_settings_effect(tmp_path, capsys):
    def fake_run(name, top1):
        folder = tmp_path / f"{lrn_study.PROXY}-{name}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"top1_accuracy": top1, "top5_accuracy": 0.9}))

    assert lrn_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    assert "with batch norm: 0 paired seed(s) so far" in capsys.readouterr().out
    for seed, (a, b) in enumerate([(0.52, 0.50), (0.53, 0.50), (0.51, 0.50)]):
        fake_run(f"a-s{seed}", a)
        fake_run(f"b-s{seed}", b)
    fake_run("sweep-sgd01-c", 0.40)
    fake_run("sweep-sgd01-d", 0.42)
    assert lrn_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "with batch norm: LRN's effect +2.00 points (per seed: +2.0, +3.0, +1.0)" in out
    assert "95% interval -0.5 to +4.5." in out
    assert "| a: batch norm, LRN (`tiny200-v1`) | 52.0% | 53.0% | 51.0% | 52.0% |" in out
    assert "| 40.0% | 42.0% | 41.0% |" in out  # the sweep row: c, d and their mean
    assert "without batch norm (the paper's setting): 0 paired seed(s) so far" in out


def test_results_quotes_the_lrn_table():
    """RESULTS.md's LRN study section holds the lines the table computes from the committed records."""
    computed = lrn_study.table(REPO / "benchmarks" / "runs")
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    for line in computed.splitlines():
        if line.startswith("| ") and "%" in line or line.startswith(tuple(lrn_study.SETTINGS)):
            assert line in results, line
