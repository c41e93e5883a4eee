"""Several devices and processes, one model: ``--distribute data-parallel`` (keras.distribution on
JAX, processes joined over gloo on 127.0.0.1) and TensorFlow's ``mirrored``, all on the CPU."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, cli

pytest.importorskip("jax")

# One process of a run: the command line's ``train``, which also reports a checksum of every final
# weight of this process's model (process 1 writes no model file to compare).
WORKER = r"""
import hashlib, json, sys
import numpy as np
from alexnet_tf import cli, distribute, training

train = training.train

def train_and_report(config, **kwargs):
    result = train(config, **kwargs)
    print("RESULT " + json.dumps({
        "process": distribute.process_index(), "writer": distribute.is_writer(), "run_dir": str(result.run_dir),
        "weights": [hashlib.sha256(np.ascontiguousarray(w).tobytes()).hexdigest() for w in result.model.get_weights()],
        "metrics": result.metrics,
    }), flush=True)
    return result

training.train = train_and_report  # the command line looks it up when it trains
sys.exit(cli.main(sys.argv[1:]))
"""
# Every run of this module: small (16 images a class, 5 steps an epoch), and three epochs, so that a
# kill after the first leaves the processes two epochs from the end.
EPOCHS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """One compilation cache for the module's JAX processes: a resumed run, and each process of a
    run, compiles the same programs as the processes before it, and XLA's compiling is most of a
    small run's time."""
    return tmp_path_factory.mktemp("jax-cache")


def jax_env(cache, devices=1, **variables):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS" and not k.startswith("KERAS_DISTRIBUTION_")}
    env.update(
        KERAS_BACKEND="jax",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        **variables,
    )
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def train_command(data, runs_dir, *launch):
    return [
        sys.executable,
        "-c",
        WORKER,
        "train",
        "--preset",
        "quick",
        "--epochs",
        str(EPOCHS),
        "--images-per-class",
        "16",
        "--data",
        str(data),
        "--runs-dir",
        str(runs_dir),
        "--distribute",
        "data-parallel",
        *launch,
    ]


def start(commands, envs, stdout=subprocess.PIPE):
    return [
        subprocess.Popen(c, stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=REPO, env=e)
        for c, e in zip(commands, envs)
    ]


def reports(procs, timeout=600):
    """Wait for every process; each must succeed. Their reports, in the order started."""
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err[-4000:]
            results.append(json.loads(out.split("RESULT ", 1)[1].splitlines()[0]))
    finally:
        for p in procs:
            p.kill()
    return results


def two_processes(data, runs_dir, cache):
    """The commands and environments of a run of two processes. Process 0 is told where to meet by
    options, process 1 by the KERAS_DISTRIBUTION_* variables (as a launcher would): both ways join."""
    address = f"127.0.0.1:{free_port()}"
    commands = [
        train_command(data, runs_dir, "--coordinator", address, "--num-processes", "2", "--process-id", "0"),
        train_command(data, runs_dir),
    ]
    envs = [
        jax_env(cache),
        jax_env(
            cache,
            KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
            KERAS_DISTRIBUTION_NUM_PROCESSES="2",
            KERAS_DISTRIBUTION_PROCESS_ID="1",
        ),
    ]
    return commands, envs


def history_of(report):
    return pd.read_csv(os.path.join(report["run_dir"], "history.csv"))


@pytest.fixture(scope="module")
def two_devices(synthetic_root, tmp_path_factory, jax_cache):
    """The reference: one process whose CPU is split into two devices, the same global batch and seed."""
    runs = tmp_path_factory.mktemp("two-devices")
    [report] = reports(start([train_command(synthetic_root, runs)], [jax_env(jax_cache, devices=2)]))
    return report, history_of(report)


@pytest.fixture(scope="module")
def killed_and_resumed(synthetic_root, tmp_path_factory, jax_cache):
    """One run of two processes, both killed as soon as the first epoch is backed up, then started
    again with the same commands (on a new port): what the folder held at the kill, the runs
    folder, and both processes' reports of the finished run."""
    runs = tmp_path_factory.mktemp("two-processes")
    procs = start(*two_processes(synthetic_root, runs, jax_cache), stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 400
        marker = None
        while time.time() < deadline and all(p.poll() is None for p in procs):
            found = list(runs.glob("*/backup/training_metadata.json"))
            if found:
                marker = found[0]
                break
            time.sleep(0.1)
        assert marker is not None, [p.communicate()[1][-3000:] for p in procs if p.poll() is not None]
        for p in procs:
            p.send_signal(signal.SIGKILL)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    run_dir = marker.parents[1]
    at_kill = {
        "run_dir": run_dir,
        "rows": len(pd.read_csv(run_dir / "history.csv")),
        "finished": (run_dir / "metrics.json").exists(),
    }
    return at_kill, runs, reports(start(*two_processes(synthetic_root, runs, jax_cache)))


@pytest.mark.slow
def test_two_processes_train_one_model(killed_and_resumed, two_devices):
    reference, reference_history = two_devices
    _, runs, resumed = killed_and_resumed
    by_process = {r["process"]: r for r in resumed}
    assert sorted(by_process) == [0, 1] and by_process[0]["writer"] and not by_process[1]["writer"]
    # Every weight of the final model is bit-identical in both processes.
    assert by_process[0]["weights"] == by_process[1]["weights"]
    # Exactly one run folder, written once: one CSV row an epoch, not one per process.
    [run_dir] = list(runs.iterdir())
    assert {"config.json", "manifest.csv", "history.csv", "model.keras", "best.keras", "metrics.json"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert not (run_dir / "backup").exists()
    history = pd.read_csv(run_dir / "history.csv")
    # Two replicas either way, fed the same global batches with the same seed: the same sums, and
    # only where the two halves of each sum meet (gloo between processes, XLA within one) may the
    # last bits differ. So every metric of every epoch agrees to 1e-5, the epochs after the
    # resume too (a resumed run draws what an uninterrupted one draws).
    assert list(history["epoch"]) == list(reference_history["epoch"]) == list(range(EPOCHS))
    for column in reference_history.columns:
        np.testing.assert_allclose(history[column], reference_history[column], rtol=1e-5, err_msg=column)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["replicas"] == 2 and metrics["distribute"] == "data-parallel"
    assert metrics["top1_accuracy"] == pytest.approx(reference["metrics"]["top1_accuracy"], abs=1e-6)
    assert by_process[1]["metrics"] == {}


@pytest.mark.slow
def test_two_devices_train_as_one_device_does(synthetic_root, tmp_path, two_devices, jax_cache):
    reference, reference_history = two_devices
    [report] = reports(start([train_command(synthetic_root, tmp_path)], [jax_env(jax_cache)]))
    assert reference["metrics"]["replicas"] == 2 and report["metrics"]["replicas"] == 1
    # One replica sums each gradient whole, two sum halves and add them: the first step's loss is
    # identical and later steps differ by float32 rounding (about 1e-7 relative a step). Adam's
    # normalised steps carry that into the weights, so the epochs' losses differ by up to about 0.6%
    # (measured); the test allows 2%. Accuracies near chance (this tiny synthetic run) flip
    # with such noise by several points, so they are compared between processes above, not here.
    assert list(history_of(report)["epoch"]) == list(range(EPOCHS))
    for column in ("loss", "val_loss"):
        np.testing.assert_allclose(history_of(report)[column], reference_history[column], rtol=2e-2, err_msg=column)


@pytest.mark.slow
def test_killing_every_process_and_starting_again_resumes(killed_and_resumed):
    at_kill, runs, _ = killed_and_resumed
    run_dir = at_kill["run_dir"]
    assert 1 <= at_kill["rows"] < EPOCHS and not at_kill["finished"]
    # The same commands again, once per process, went on from the last finished epoch.
    assert [p.name for p in runs.iterdir()] == [run_dir.name]
    epochs = list(pd.read_csv(run_dir / "history.csv")["epoch"])
    # Every epoch once, in order: the kill may have cut an epoch after its row but before its backup,
    # and then that epoch ran again and its row appears twice (read_history keeps the last).
    assert sorted(set(epochs)) == list(range(EPOCHS)) and epochs == sorted(epochs)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed"] is True and metrics["epochs"] == EPOCHS and metrics["processes"] == 2
    assert not (run_dir / "backup").exists()


def test_shards_of_a_global_batch_partition_it():
    from alexnet_tf.feed import ArrayBatches

    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    labels = np.arange(100)
    whole = ArrayBatches(images, labels, 20, seed=3, shard=(0, 1))
    parts = [ArrayBatches(images, labels, 20, seed=3, shard=(i, 4)) for i in range(4)]
    assert len(whole) == 5 and all(len(p) == 5 for p in parts)
    for step in range(5):
        shares = [p[step][1] for p in parts]
        assert all(len(s) == 5 for s in shares)
        assert sorted(np.concatenate(shares)) == sorted(whole[step][1])
    # The last, partial batch is left out, so every process feeds as many equal shares.
    assert len(ArrayBatches(images[:90], labels[:90], 20, shard=(1, 2))) == 4
    with pytest.raises(ValueError, match="multiple of 3"):
        ArrayBatches(images, labels, 20, shard=(0, 3))


def test_validation_must_split_over_local_devices():
    from alexnet_tf.feed import validation_batch_size

    assert validation_batch_size(500, 1) == 256
    assert validation_batch_size(500, 4) == 256 and validation_batch_size(600, 8) == 256
    assert validation_batch_size(9_999, 3) == 255
    with pytest.raises(ValueError, match="500 validation images do not split evenly over .* 8 devices"):
        validation_batch_size(500, 8)


# Several ``python -m alexnet_tf ARGS`` in one JAX process, each with its own extra environment:
# their exit codes and what each wrote to stderr.
COMMANDS = r"""
import contextlib, io, json, os, sys
from alexnet_tf.cli import main

results = []
for args, env in json.loads(sys.argv[1]):
    os.environ.update(env)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    for name in env:
        del os.environ[name]
    results.append([code, err.getvalue()])
print("RESULT " + json.dumps(results))
"""


def test_launch_settings_need_data_parallel_on_jax(tmp_path, capsys, jax_cache):
    train = ["train", "--runs-dir", str(tmp_path)]
    # Refused on this process's backend (the suite's, TensorFlow), before any process is started.
    code, _, err = cli([*train, "--num-processes", "2", "--process-id", "0", "--coordinator", "127.0.0.1:1"], capsys)
    assert code == 1 and "are for --distribute data-parallel" in err
    code, _, err = cli([*train, "--distribute", "data-parallel"], capsys)
    assert code == 1 and "set KERAS_BACKEND=jax" in err

    # The rest on JAX, in one fresh process (of two devices): refused before it joins any other.
    commands = [
        ([*train, "--distribute", "data-parallel", "--num-processes", "2"], {}),
        (
            [*train, "--distribute", "data-parallel"],
            {
                "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                "KERAS_DISTRIBUTION_PROCESS_ID": "5",
                "KERAS_DISTRIBUTION_JOB_ADDRESSES": "127.0.0.1:1",
            },
        ),
        ([*train, "--distribute", "data-parallel", "--batch-size", "33"], {}),
    ]
    out = subprocess.run(
        [sys.executable, "-c", COMMANDS, json.dumps(commands)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=jax_env(jax_cache, devices=2),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    missing, out_of_range, uneven = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert missing[0] == 1 and "missing: --coordinator HOST:PORT, --process-id I" in missing[1]
    assert out_of_range[0] == 1 and "--process-id 5 must be in 0..1" in out_of_range[1]
    assert uneven[0] == 1 and "batch_size=33 (the global batch) does not split evenly over 2 devices" in uneven[1]
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_readme_launch_recipes_parse():
    """The README's launch examples use options that exist, and each sets up a data-parallel run."""
    import re
    import shlex

    from alexnet_tf.cli import build_parser, config_from_args

    page = (REPO / "docs" / "backends.md").read_text()
    block = re.search(r"## Training on several GPUs or machines.*?```bash\n(.*?)```", page, re.DOTALL).group(1)
    text = block.replace("\\\n", " ")
    # What the shell and Slurm fill in, for one of the processes.
    text = re.sub(r"\$\(scontrol[^)]*\)", "node1", text)
    text = text.replace('"$SLURM_NTASKS"', "2").replace('"$SLURM_PROCID"', "1").replace("$i", "1")
    commands = [m.split("'")[0].split("&")[0] for m in re.findall(r"python -m alexnet_tf (train .*)", text)]
    assert len(commands) == 2
    for command in commands:
        args = build_parser().parse_args(shlex.split(command))
        assert config_from_args(args).distribute == "data-parallel"
        assert args.coordinator and args.num_processes and args.process_id
