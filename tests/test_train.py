import json
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from alexnet_tf.cli import main as cli_main
from alexnet_tf.config import TrainConfig, preset
from alexnet_tf.evaluate import evaluate_predictions, predict, prediction_table, topk_metrics
from alexnet_tf.hardware import choose_jit_compile, choose_precision, describe_device
from alexnet_tf.saved_run import evaluate_saved
from alexnet_tf.training import train
from conftest import REPO


@pytest.fixture
def quick_run(learned_run):
    return learned_run


def test_quick_training_learns_and_writes_a_run_folder(quick_run):
    config, result = quick_run
    # 10 classes: chance is 0.10 (+-0.03 on 100 images); 8 epochs reach 0.28-0.45 by CPU and precision
    assert result.metrics["top1_accuracy"] > 0.2
    assert result.metrics["top5_accuracy"] > result.metrics["top1_accuracy"]
    for name in (
        "config.json",
        "manifest.csv",
        "history.csv",
        "metrics.json",
        "model.keras",
        "best.keras",
        "per_class_val.csv",
        "figures/history.png",
        "figures/errors.png",
        "figures/confusion_val.png",
        "figures/confused_pairs_val.png",
        "figures/predictions_val.png",
        "figures/conv1_filters.png",
        "figures/per_class_val.png",
    ):
        assert (result.run_dir / name).is_file(), name
    assert not (result.run_dir / "backup").exists()
    manifest = pd.read_csv(result.run_dir / "manifest.csv")
    assert (manifest["split"] == "train").sum() == 600 and (manifest["split"] == "val").sum() == 100
    recorded = config.resolved().replace(
        precision=choose_precision("auto"), jit_compile=choose_jit_compile(None, describe_device()[1])
    )
    assert TrainConfig.from_json((result.run_dir / "config.json").read_text()) == recorded
    assert len(result.history) == 8


def test_finished_run_is_loaded_not_retrained(quick_run):
    config, result = quick_run
    again = train(config, verbose=0)
    assert again.metrics == json.loads((result.run_dir / "metrics.json").read_text())
    assert len(pd.read_csv(result.run_dir / "history.csv")) == 8
    with pytest.raises(FileExistsError, match="another config"):
        train(config.replace(dropout=0.3, name=result.run_dir.name), verbose=0)


def test_relative_and_absolute_paths_are_one_run(quick_run, monkeypatch):
    config, result = quick_run
    monkeypatch.chdir(result.run_dir)
    relative = config.replace(runs_dir="../../" + result.run_dir.parent.name)
    assert relative.resolved() == config.resolved()


def test_saved_model_reloads_and_predicts_the_same(quick_run, synthetic_root):
    _, result = quick_run
    loaded = keras.models.load_model(result.run_dir / "model.keras")
    x = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), result.model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_evaluate_saved_run_and_export_h5(quick_run, tmp_path):
    _, result = quick_run
    metrics = evaluate_saved(result.run_dir, "val", export=tmp_path / "model.h5")
    assert metrics["top1_accuracy"] == pytest.approx(result.metrics["top1_accuracy"], abs=1e-6)
    assert (tmp_path / "model.h5").stat().st_size > 100_000


def test_unlabelled_test_split_gets_predictions_not_a_score(quick_run, synthetic_root, capsys):
    _, result = quick_run
    assert cli_main(["evaluate", str(result.run_dir), "--split", "test"]) == 0
    assert '"predictions"' in capsys.readouterr().out
    table = pd.read_csv(result.run_dir / "predictions_test.csv")
    assert list(table["file"]) == [f"test/images/test_{n}.JPEG" for n in range(20)]  # natural order
    class_names = sorted(pd.read_csv(result.run_dir / "manifest.csv")["wnid"].unique())
    images = np.stack([np.asarray(keras.utils.load_img(synthetic_root / f)) for f in table["file"]])
    probs = predict(result.model, images)
    assert list(table["predicted"]) == [class_names[i] for i in probs.argmax(1)]
    np.testing.assert_allclose(table["probability"], probs.max(1), rtol=1e-4)
    assert all(len(row.split()) == 5 and row.split()[0] == top for row, top in zip(table["top5"], table["predicted"]))


def test_prediction_table_and_unlabelled_scores():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    table = prediction_table(["x.jpg", "y.jpg"], probs, ["a", "b", "c"], ["ant", "bee", "cat"], k=2)
    assert list(table["predicted"]) == ["b", "a"] and list(table["name"]) == ["bee", "ant"]
    assert list(table["probability"]) == [0.6, 0.5] and list(table["top2"]) == ["b c", "a c"]
    with pytest.raises(ValueError, match="2 of 2 images have no label"):
        evaluate_predictions(np.array([-1, -1]), probs, ["a", "b", "c"])


def test_killed_run_resumes_with_its_history_one_line_an_epoch(
    interrupted, synthetic_root, tmp_path, capsys, monkeypatch
):
    config, folder = interrupted  # stopped by Ctrl-C after epoch 2 of 3 (conftest.py)
    assert (folder / "backup").is_dir() and not (folder / "model.keras").exists()
    monkeypatch.chdir(tmp_path)  # as a notebook runs beside its runs folder
    result = train(config, verbose="line")
    assert list(result.history["epoch"]) == [0, 1, 2] and result.metrics["resumed"] is True
    assert not (result.run_dir / "backup").exists()
    out = capsys.readouterr().out
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["3/3"]
    assert all(len(line) < 100 and "val top-1" in line for line in epochs)
    assert "━" not in out and "Epoch 1/" not in out
    assert str(tmp_path) not in out  # the run folder is shown relative to the working folder where it can be
    assert str(synthetic_root) not in out  # so is the data (../synthetic0/...), which the run records as absolute


def test_topk_and_report_against_hand_computed_values():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4]])
    labels = np.array([0, 1, 1, 2])  # argmax: 0, 2, 1, 0 -> right, wrong, right, wrong
    metrics, report, confusion = evaluate_predictions(labels, probs, ["a", "b", "c"])
    assert metrics["top1_accuracy"] == pytest.approx(0.5) and metrics["top1_error"] == pytest.approx(0.5)
    assert topk_metrics(labels, probs)["top5_accuracy"] == 1.0
    np.testing.assert_array_equal(confusion, [[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    rows = report.set_index("class")
    assert rows.loc["a", "precision"] == pytest.approx(0.5) and rows.loc["a", "recall"] == 1.0
    assert rows.loc["b", "recall"] == pytest.approx(0.5) and rows.loc["b", "f1"] == pytest.approx(2 / 3)
    assert rows.loc["c", "f1"] == 0.0
    assert rows.loc["macro avg", "f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    ranked_sixth = [0.0, 0.3, 0.25, 0.2, 0.15, 0.1]  # the true class 0 is the least likely of six
    ranked_fifth = [0.1, 0.3, 0.25, 0.2, 0.15, 0.0]
    assert topk_metrics(np.zeros(2, int), np.array([ranked_sixth, ranked_fifth]))["top5_accuracy"] == 0.5


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"epochs": -1}, "epochs=-1"),
        ({"variant": "vgg"}, "variant='vgg'"),
        ({"schedule": "warm"}, "schedule"),
        ({"augmentation": "heavy"}, "augmentation"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
    ],
)
def test_bad_config_values(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_classes_not_in_the_data(synthetic_root, tmp_path):
    with pytest.raises(ValueError, match="unknown class name"):
        train(
            preset("quick", data=str(synthetic_root), runs_dir=str(tmp_path), classes=["n01443537"], name="run"),
            verbose=0,
        )
    assert not (tmp_path / "run").exists()  # the corrected command can reuse the name


def test_cli_help_and_bad_values(capsys):
    # In this process, through the command line's own entry point; a fresh `python -m alexnet_tf`
    # is tested once (test_bad_inputs.py, test_cpu_machine_prints_no_cuda_errors).
    from alexnet_tf.cli import main

    for args in (["--help"], ["train", "--help"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(args)
        assert done.value.code == 0 and "usage" in capsys.readouterr().out
    assert main(["train", "--epochs", "0"]) == 1
    assert "epochs=0 (--epochs) must be >= 1" in capsys.readouterr().err


def test_mirrored_strategy_on_two_cpu_devices(synthetic_root, tmp_path):
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from alexnet_tf.config import preset
from alexnet_tf.training import train
r = train(preset("quick", data={str(synthetic_root)!r}, runs_dir={str(tmp_path)!r}, epochs=1, images_per_class=8,
                 distribute="mirrored", augmentation="none"), verbose=0)
print("RESULT", r.metrics["epochs"], "REPLICAS", r.metrics["replicas"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RESULT 1 REPLICAS 2" in out.stdout  # one replica on each logical CPU device


def test_confused_pairs_name_the_most_frequent_mistakes():
    from alexnet_tf.evaluate import confused_pairs

    confusion = np.array([[8, 2, 0], [5, 4, 1], [0, 0, 10]])
    pairs = confused_pairs(confusion, ["cat", "dog", "owl"], top=5)
    assert list(zip(pairs["true"], pairs["predicted"], pairs["images"])) == [
        ("dog", "cat", 5),
        ("cat", "dog", 2),
        ("dog", "owl", 1),
    ]
    assert pairs["share"].tolist() == [0.5, 0.2, 0.1]  # no pair without a mistake, none on the diagonal


def test_shown_paths_are_relative_beside_the_working_folder_and_absolute_further(tmp_path, monkeypatch):
    from alexnet_tf.run_folder import shown

    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert shown(tmp_path / "runs" / "a") == "../runs/a"
    assert shown(tmp_path / "notebooks" / "b") == "b"
    far = tmp_path.parent.parent / "elsewhere"
    assert shown(far) == str(far)

    def other_drive(path, start=None):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")

    monkeypatch.setattr("os.path.relpath", other_drive)  # Windows, another drive
    assert shown(far) == str(far)


def test_the_retracing_notice_is_dropped_and_other_warnings_pass(caplog):
    import logging

    from alexnet_tf.hardware import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        logger.warning(
            "5 out of the last 9 calls to <function f> triggered tf.function retracing. Tracing is expensive"
        )
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_the_notebooks_own_figures_draw(tmp_path):
    import pandas as pd

    from alexnet_tf.plots import plot_experiment, plot_per_class_accuracy, plot_samples, plot_schedule

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8), np.repeat(np.arange(10), 4)
    plot_samples(images, labels, [f"class {i}" for i in range(10)], per_class=3, classes=4, path=tmp_path / "s.png")
    plot_schedule([0.1 * 0.5**i for i in range(6)], tmp_path / "lr.png")
    table = pd.DataFrame({"dropout": [0.3, 0.5], "top1_accuracy": [0.4, 0.5]})
    plot_experiment(table, ["dropout"], tmp_path / "grid.png")
    report = pd.DataFrame(
        {
            "class": [f"n{i:03d}" for i in range(50)],
            "name": [f"thing {i}" for i in range(50)],
            "accuracy": rng.random(50),
        }
    )
    fig = plot_per_class_accuracy(report, tmp_path / "per_class.png", top=10)
    assert "the 5 worst and 5 best of 50 classes" in fig.axes[0].get_title()
    assert len(fig.axes[0].patches) == 10
    for name in ("s.png", "lr.png", "grid.png", "per_class.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
