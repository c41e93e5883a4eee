"""One training run over several devices and processes, on the runtimes Keras already has.

- ``none``: one device.
- ``mirrored``: TensorFlow's ``MirroredStrategy`` over every GPU of one machine (with no GPU,
  over every logical CPU device, which is how it is tested).
- ``data-parallel``: ``keras.distribution.DataParallel`` on JAX. Every device of every process
  holds a replica of the model, and every global batch is split over them; JAX reduces the
  gradients (NCCL on GPUs, gloo on CPUs). Processes find each other through ``jax.distributed``,
  started by ``keras.distribution.initialize`` from a coordinator address, the number of
  processes and this process's id (arguments, or ``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``).

Every process runs the same ``train`` call, so every decision is taken alike everywhere; process 0
alone writes the run folder (``is_writer``). ``setup`` answers, once, all that a run asks of its
distribution (``Distribution``: writer, shard, scope, replicas). What each process feeds is
``alexnet_tf.feed``'s job.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import keras

from .config import Distribute

ENVIRONMENT = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")


def multi_process_requested(coordinator=None, num_processes=None, process_id=None) -> bool:
    """Whether the arguments or the environment ask for several processes."""
    return any(v is not None for v in (coordinator, num_processes, process_id)) or any(
        os.environ.get(name) for name in ENVIRONMENT
    )


def start_processes(coordinator=None, num_processes=None, process_id=None) -> None:
    """Join this process to a run of several (JAX only; call before any computation). Values not
    given come from the ``KERAS_DISTRIBUTION_*`` environment variables."""
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"several processes train with --distribute data-parallel on JAX; this is the "
            f"{keras.backend.backend()} backend: set KERAS_BACKEND=jax"
        )
    coordinator = coordinator or os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    num_processes = num_processes if num_processes is not None else _int_env("KERAS_DISTRIBUTION_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _int_env("KERAS_DISTRIBUTION_PROCESS_ID")
    missing = [
        name
        for name, value in (
            ("--coordinator HOST:PORT", coordinator),
            ("--num-processes N", num_processes),
            ("--process-id I", process_id),
        )
        if value is None
    ]
    if missing:
        raise ValueError(
            f"several processes need all three of --coordinator, --num-processes and --process-id "
            f"(or the KERAS_DISTRIBUTION_* variables); missing: {', '.join(missing)}"
        )
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id {process_id} must be in 0..{num_processes - 1} (--num-processes {num_processes})"
        )
    import jax

    # CPUs reduce gradients over gloo (TCP); GPUs use NCCL whatever this says.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(coordinator, num_processes, process_id)


def _int_env(name):
    text = os.environ.get(name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} must be a whole number") from None


def process_index() -> int:
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def process_count() -> int:
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def is_writer() -> bool:
    """Process 0 writes the run folder; the others write nothing there."""
    return process_index() == 0


def check(distribute: str, batch_size: int) -> None:
    """Refuse, before any data is decoded, what this backend or these devices cannot run."""
    backend = keras.backend.backend()
    if distribute == "mirrored" and backend != "tensorflow":
        raise ValueError(
            f"distribute='mirrored' is TensorFlow's MirroredStrategy; on {backend} use data-parallel "
            f"on JAX (KERAS_BACKEND=jax)"
        )
    if distribute == "data-parallel":
        if backend != "jax":
            raise ValueError(
                f"distribute='data-parallel' is keras.distribution on JAX; this is the {backend} "
                f"backend: set KERAS_BACKEND=jax (or use mirrored on TensorFlow, one machine)"
            )
        import jax

        replicas = jax.device_count()  # every device of every process
        if batch_size % replicas:
            raise ValueError(
                f"batch_size={batch_size} (the global batch) does not split evenly over {replicas} "
                f"devices ({process_count()} processes x {jax.local_device_count()}); use a "
                f"multiple of {replicas}"
            )


def tf_strategy():
    """MirroredStrategy over every GPU, or over every logical CPU device where there is no GPU."""
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


@contextlib.contextmanager
def outside_distribution():
    """Save from process 0 alone. Keras' saving builds a few throw-away variables, which under a
    distribution would be spread over every process: a step the other processes never join."""
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


@dataclass(frozen=True)
class Distribution:
    """How this process takes part in a run, asked once (``setup``) and read from then on."""

    kind: Distribute
    writer: bool  # process 0 writes the run folder; the others write nothing there
    process_index: int
    process_count: int
    local_devices: int  # replicas this process holds: its devices under data-parallel, one otherwise
    replicas: int  # model replicas over the whole run
    shard: tuple[int, int] | None  # (this process, process count) under data-parallel, None otherwise
    scope: contextlib.AbstractContextManager  # build, compile and fit the model inside it


def setup(kind: Distribute, batch_size: int) -> Distribution:
    """The distribution ``kind`` names for a global batch of ``batch_size``, refused (``check``)
    before any data is decoded where this backend or these devices cannot run it. Under
    data-parallel every process feeds its share of each global batch, even when it is the only one."""
    check(kind, batch_size)
    index, count = process_index(), process_count()
    if kind == "mirrored":
        strategy = tf_strategy()
        scope, replicas = strategy.scope(), strategy.num_replicas_in_sync
        return Distribution(kind, index == 0, index, count, 1, replicas, None, scope)
    if kind == "data-parallel":
        import jax

        # Each process feeds its own share of every batch (feed.ArrayBatches), so Keras must not shard again.
        scope = keras.distribution.DataParallel(auto_shard_dataset=False).scope()
        return Distribution(
            kind, index == 0, index, count, jax.local_device_count(), jax.device_count(), (index, count), scope
        )
    return Distribution(kind, index == 0, index, count, 1, 1, None, contextlib.nullcontext())
