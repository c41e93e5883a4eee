"""Data-parallel benchmark: the ``tiny`` model (200 classes, global batch 128, random uint8 data,
SGD) trained under ``--distribute data-parallel`` on JAX by one process against two processes on
127.0.0.1 (gloo), and the cost of the gradient exchange between the two.

    python benchmarks/bench_distribute.py [--batches 8] [--rounds 2] [--batch-size 128]

The machine's cores are shared out: one process gets all of them, each of two processes gets half,
so the two runs have the same compute. On a CPU the two processes cannot be faster; what the
table shows is what the processes cost: the all-reduce of every gradient (the model's parameters
in float32), timed alone between the two processes, and the whole step. Each run is a fresh set of
processes, alternated over ``--rounds`` (best of each).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

from common import REPO, best_of_alternating


def worker(args):
    """One process of a run: train ``--batches`` steps after a warm-up epoch; process 0 prints figures."""
    os.sched_setaffinity(0, [int(c) for c in args.cores.split(",")])  # before XLA sizes its thread pool
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras
    import numpy as np

    from alexnet_tf import distribute
    from alexnet_tf.feed import training_batches
    from alexnet_tf.model import alexnet_model

    if args.processes > 1:
        distribute.start_processes(f"127.0.0.1:{args.port}", args.processes, args.process_id)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = args.batch_size * args.batches
    x = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    y = np.eye(200, dtype="float32")[rng.integers(0, 200, n)]
    with keras.distribution.DataParallel(auto_shard_dataset=False).scope():
        model = alexnet_model(num_classes=200)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "categorical_crossentropy", jit_compile=True)
        data = training_batches(x, y, args.batch_size, shard=(jax.process_index(), jax.process_count()))
        model.fit(data, epochs=1, verbose=0)  # compile, warm up
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
    figures = {
        "images_per_second": n / seconds,
        "step_ms": 1000 * seconds / args.batches,
        "parameters": model.count_params(),
    }
    if args.processes > 1:
        figures["all_reduce_ms"] = all_reduce_ms(model.count_params())
    if jax.process_index() == 0:
        print("RESULT " + json.dumps(figures))


def all_reduce_ms(parameters, repeats=20):
    """Milliseconds to sum one float32 vector of ``parameters`` over every device of every process
    (the gradient exchange of one step), replicated to all: the best of ``repeats``."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()), ("batch",))
    local = np.ones((jax.local_device_count(), parameters), np.float32)
    grads = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("batch")), local)
    total = jax.jit(lambda g: g.sum(0), out_shardings=NamedSharding(mesh, PartitionSpec()))
    total(grads).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        total(grads).block_until_ready()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes, args):
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // processes)
    port = free_port()
    commands = [
        [
            sys.executable,
            __file__,
            "--worker",
            "--processes",
            str(processes),
            "--process-id",
            str(i),
            "--port",
            str(port),
            "--batches",
            str(args.batches),
            "--batch-size",
            str(args.batch_size),
            "--cores",
            ",".join(map(str, cores[i * share : (i + 1) * share] or cores[-1:])),
        ]
        for i in range(processes)
    ]
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
        for c in commands
    ]
    outputs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outputs):
        if p.returncode:
            sys.exit(f"{processes} process(es) failed:\n{err[-3000:]}")
    return json.loads(outputs[0][0].split("RESULT ", 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8, help="timed steps of each run")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cores", default="0", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    figures = {}

    def images_per_second(processes):
        result = run(processes, args)
        if result["images_per_second"] > figures.get(processes, {}).get("images_per_second", 0):
            figures[processes] = result
        return result["images_per_second"]

    best = best_of_alternating([1, 2], images_per_second, args.rounds)
    cores = len(os.sched_getaffinity(0))
    print(
        f"tiny model, global batch {args.batch_size}, {figures[1]['parameters']:,} parameters "
        f"({4 * figures[1]['parameters'] / 2**20:.1f} MiB of float32 gradients a step), {cores} cores\n"
    )
    print("| run | images/s | ms a step | vs one process | all-reduce of the gradients, ms a step |")
    print("|---|---|---|---|---|")
    for processes in (1, 2):
        f = figures[processes]
        cores_each = f"{max(1, cores // processes)} core{'s' if cores // processes > 1 else ''}"
        label = f"{processes} process{'es' if processes > 1 else ''} x {cores_each}"
        reduce = (
            f"{f['all_reduce_ms']:.1f} ({f['all_reduce_ms'] / f['step_ms']:.0%} of the step)"
            if "all_reduce_ms" in f
            else "none"
        )
        print(f"| {label} | {best[processes]:.0f} | {f['step_ms']:.0f} | {best[processes] / best[1]:.2f}x | {reduce} |")


if __name__ == "__main__":
    main()
