"""The recipe study's runs: each is the study's base recipe on the proxy with exactly its change."""

import json
import re
import shlex
import sys

import pandas as pd

from alexnet_tf.cli import build_parser, config_from_args
from alexnet_tf.config import STUDY_CHANGES, preset
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import proxy_study

# The settings each run may change (a seed run changes only the seed; a batch run the rate too).
CHANGES = {
    "nolrn": {"lrn"},
    "pca": {"augment"},
    "pool2": {"pooling"},
    "base-s1": {"seed"},
    "ema": {"ema_momentum"},
    "dropout5": {"dropout"},
    "wd1e-3": {"weight_decay"},
    "rrc": {"augment"},
    "erasing": {"augment"},
    "ls2": {"label_smoothing"},
    "mixup": {"mixing"},
    "cutmix": {"mixing"},
    "b256": {"batch_size", "learning_rate"},
    "combo-s0": {"ema_momentum", "weight_decay", "label_smoothing"},
    "combo-s1": {"ema_momentum", "weight_decay", "label_smoothing", "seed"},
    "base-40e": {"epochs"},
    "combo-40e": {"ema_momentum", "weight_decay", "label_smoothing", "epochs"},
    "rrc-40e": {"augment", "epochs"},
    "erasing-40e": {"augment", "epochs"},
    "mixup-40e": {"mixing", "epochs"},
    "wide-40e": {"variant", "epochs"},
    "dropout0-40e": {"dropout", "epochs"},
    "base-s1-40e": {"seed", "epochs"},
}


def config_of(name):
    args = build_parser().parse_args(shlex.split(proxy_study.shell_command(name))[3:])  # after "python -m alexnet_tf"
    return config_from_args(args)


def test_each_run_is_the_base_with_one_change():
    base = config_of("base-s0")
    kept = {"allow_shared_images": True, "precision": "float32", "jit_compile": False, "name": base.name}
    assert base == preset("tiny200-v1", data=base.data, epochs=18, images_per_class=None, **kept)
    assert (base.epochs, base.precision, base.jit_compile, base.images_per_class) == (18, "float32", False, None)
    assert base.data == f"data/{proxy_study.PROXY}" and base.val_split == "val"  # the held-out train images
    assert set(CHANGES) == set(proxy_study.RUNS) - {"base-s0"}
    for name, fields in CHANGES.items():
        config = config_of(name)
        changed = {line.split(":")[0] for line in base.differences(config)} - {"name"}
        assert changed == fields, name
    assert config_of("combo-40e").epochs == 40 and proxy_study.shell_command("combo-40e").count("--epochs") == 1
    augment = {n: config_of(n).augment for n in ("pca", "rrc", "erasing")}
    assert augment["pca"].pca_lighting == 0.1 and augment["rrc"].crop_area == 0.35 and augment["erasing"].erasing == 0.5
    assert augment["pca"].crop_padding == base.augment.crop_padding == 4  # the recipe's other settings kept


def test_commands_and_table_without_runs(tmp_path, capsys):
    assert proxy_study.main(["commands", "pca"]) == 0
    assert "--augment '{\"pca_lighting\": 0.1}'" in capsys.readouterr().out
    assert proxy_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("\n") == 2  # the header only


def test_the_tiny200_presets_are_the_base_with_the_combination():
    combined = config_of("combo-s0")
    study = preset("tiny200-v1", **STUDY_CHANGES)
    assert {k: getattr(combined, k) for k in STUDY_CHANGES} == STUDY_CHANGES
    assert preset("tiny200-v2") == study and preset("tiny200-v1").differences(study) == [
        "weight_decay: 0.0005 -> 0.001",
        "label_smoothing: 0.1 -> 0.2",
        "ema_momentum: None -> 0.99",
    ]
    assert preset("tiny200").differences(study) == ["variant: 'wide' -> 'tiny'"]
    assert preset("tiny10") == study.replace(classes=10, epochs=60)


def test_the_table_says_whether_the_combination_beats_the_seed_spread(tmp_path, capsys):
    def fake_run(name, top1):
        folder = tmp_path / f"{proxy_study.PROXY}-{name}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"top1_accuracy": top1, "top5_accuracy": 0.9}))
        pd.DataFrame({"epoch": [0, 1], "accuracy": [0.3, 0.6], "val_accuracy": [0.2, top1]}).to_csv(
            folder / "history.csv", index=False
        )

    for name, top1 in {"base-s0": 0.583, "base-s1": 0.597, "combo-s0": 0.598, "combo-s1": 0.600}.items():
        fake_run(name, top1)
    assert proxy_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Seed spread of the base recipe: 1.4 points" in out
    assert "mean 59.9%, +0.9 points against the base's mean (not a win: within the seed spread)" in out
    (tmp_path / f"{proxy_study.PROXY}-combo-s1" / "metrics.json").write_text(
        json.dumps({"top1_accuracy": 0.614, "top5_accuracy": 0.9})
    )
    assert proxy_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    assert "+1.6 points against the base's mean (a win: more than the seed spread)" in capsys.readouterr().out
    fake_run("base-40e", 0.640)
    fake_run("combo-40e", 0.632)
    assert proxy_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "In 40 epochs (seed 0), the combination against the base: -0.8 points" in out
    assert "| 63.2% | 90.0% | -0.8 |" in out  # the 40-epoch rows against the 40-epoch base, not the 18-epoch mean
    fake_run("base-s1-40e", 0.660)  # a second 40-epoch seed: its spread, and the mean as the reference
    assert proxy_study.main(["table", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Seed spread of the base at 40 epochs: 2.0 points (seeds 0 and 1, mean 65.0%" in out
    assert "| 63.2% | 90.0% | -1.8 |" in out and "| 64.0% | 90.0% | -1.0 |" in out


def test_results_quotes_the_committed_records():
    """Each proxy row of RESULTS.md gives the top-1, top-5, 'vs base' and train top-1 that the
    table computes from the committed records, and the seed-spread lines are the table's own."""
    computed = proxy_study.table(REPO / "benchmarks" / "runs")
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    rows = [line for line in computed.splitlines() if line.startswith("| ") and "benchmarks/runs/" in line]
    assert len(rows) == len(proxy_study.RUNS)  # every run of the study has its records in git
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        folder = cells[-1]
        quoted = [
            line for line in results.splitlines() if line.startswith("|") and line.rstrip().endswith(f"{folder} |")
        ]
        assert len(quoted) == 1, f"RESULTS.md has {len(quoted)} rows for {folder}"
        assert [c.strip() for c in quoted[0].strip("|").split("|")][1:5] == cells[1:5], folder
    summary = [line for line in computed.splitlines() if line.startswith(("Seed spread", "The combination"))]
    assert len(summary) == 3
    assert summary[0] in results and summary[1] in results  # the 18-epoch lines, verbatim
    long_spread = re.search(r"at 40 epochs: ([0-9.]+) points", summary[2]).group(1)
    assert f"The seed spread at 40 epochs: {long_spread} points" in results
