"""What the machine is, and the precision and compilation that suit it.

One place decides, for the CPU and the GPU alike:

* precision: ``mixed_bfloat16`` on a GPU of compute capability 8.0 or newer (Ampere, Hopper)
  and on a CPU with native bfloat16 arithmetic (``avx512_bf16`` or ``amx_bf16``);
  ``mixed_float16`` on an older GPU (a T4 is 7.5: fast float16, no fast bfloat16), with the
  loss scaling Keras applies for that policy; ``float32`` on any other CPU, where bfloat16 is
  emulated and many times slower.
* XLA (``jit_compile``) on TensorFlow: on for a GPU, off for a CPU, where its oneDNN kernels
  are as fast or faster (benchmarks/bench_precision.py measures both). JAX always compiles its
  step; PyTorch runs eagerly.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import typing
from pathlib import Path
from typing import Literal

Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
PRECISIONS = typing.get_args(Precision)
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _no_retracing_notice(record: logging.LogRecord) -> bool:
    """Drop TensorFlow's "triggered tf.function retracing" warning: evaluating several models, or
    arrays whose last batch is shorter, traces ``predict`` again by design, and the notice reads as
    a fault in every notebook that compares runs. Other TensorFlow warnings pass."""
    return "triggered tf.function retracing" not in record.getMessage()


# The package each Keras backend needs, as pip installs it (the pins of requirements.txt and CI).
BACKEND_PACKAGES = {"tensorflow": "tensorflow==2.21.0", "jax": "jax==0.10.2 jaxlib==0.10.2", "torch": "torch==2.13.0"}


class BackendMissing(ModuleNotFoundError):
    """``KERAS_BACKEND`` names a backend whose package is not installed (or an unknown one)."""


def require_backend() -> None:
    """Before Keras is imported: one clear error when ``KERAS_BACKEND``'s package is missing, which
    Keras itself reports as a ModuleNotFoundError deep inside its own import. Under ``python -m
    alexnet_tf`` (whose package loads before its command line) the error is one line and exit 1."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    problem = None
    if backend not in BACKEND_PACKAGES:
        problem = (
            f"KERAS_BACKEND={backend!r} is not a backend this project runs on: choose {', '.join(BACKEND_PACKAGES)}"
        )
    elif importlib.util.find_spec(backend) is None:
        problem = (
            f"KERAS_BACKEND={backend} needs {backend}, which is not installed: pip install "
            f"{BACKEND_PACKAGES[backend]} (or choose another backend with KERAS_BACKEND)"
        )
    if problem is None:
        return
    if started_as_command():
        raise SystemExit(f"error: {problem}")
    raise BackendMissing(problem)


def started_as_command() -> bool:
    """True in ``python -m alexnet_tf ...``."""
    argv = list(getattr(sys, "orig_argv", ()))
    return any(a == "-m" and argv[i + 1 : i + 2] == ["alexnet_tf"] for i, a in enumerate(argv)) or any(
        a == "-malexnet_tf" for a in argv
    )


def import_tensorflow_quietly():
    """``import tensorflow`` (the module, or None where it is not installed) with the process's
    stderr pointed at /dev/null for that moment only: TensorFlow writes some start-up lines
    ("I0000 ... Could not find cuda drivers") before it reads ``TF_CPP_MIN_LOG_LEVEL``.
    Left to speak where the user set ``TF_CPP_MIN_LOG_LEVEL`` themselves."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if importlib.util.find_spec("tensorflow") is None:
        return None
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == _QUIET_LEVEL and _we_set_the_level
    if quiet:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            tf.config.list_physical_devices("GPU")  # the GPU probe's lines too (JAX and PyTorch skip it)
    except ImportError:  # a broken install: the backends that do not need it go on without it
        return None
    finally:
        if quiet:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    return tf


_QUIET_LEVEL = "3"
_we_set_the_level = False


def quiet_tensorflow_logs() -> None:
    """Hide TensorFlow's C++ start-up lines, whatever the Keras backend, unless the user set
    ``TF_CPP_MIN_LOG_LEVEL`` themselves.

    On a machine without a GPU they include "failed call to cuInit: ... UNKNOWN ERROR (303)",
    which reads as a failure; ``describe_device`` says in one line what runs instead. Some of
    them are written before TensorFlow reads its log level, so TensorFlow is imported here (with
    ``import_tensorflow_quietly``), also under JAX and PyTorch: Keras imports it on every backend
    where it is installed (``keras.utils.set_random_seed`` seeds it too)."""
    global _we_set_the_level
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" and importlib.util.find_spec("tensorflow"):
        logging.getLogger("tensorflow").addFilter(_no_retracing_notice)
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ and not _we_set_the_level:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _QUIET_LEVEL
    _we_set_the_level = True
    import_tensorflow_quietly()


def cpu_flags(cpuinfo="/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def gpu_compute_capability() -> tuple[int, int] | None:
    """(major, minor) of the first GPU the Keras backend sees, or None without a GPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0)))
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus:
                major, _, minor = str(getattr(gpus[0], "compute_capability", "0.0")).partition(".")
                return int(major), int(minor or 0)
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return tuple(torch.cuda.get_device_capability(0))
    except (RuntimeError, ValueError):  # a driver that answers badly: treat as no GPU
        return None
    return None


def choose_precision(requested="auto", gpu_capability=None, flags=None) -> str:
    """The Keras dtype policy name for ``requested`` ("auto" or one of ``PRECISIONS``).

    ``gpu_capability``: (major, minor) of the GPU, or None on a CPU; ``flags``: the CPU's
    feature flags (read from the machine when None)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision={requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    if gpu_capability is not None:
        return "mixed_bfloat16" if tuple(gpu_capability) >= (8, 0) else "mixed_float16"
    flags = cpu_flags() if flags is None else set(flags)
    return "mixed_bfloat16" if flags & set(CPU_BF16_FLAGS) else "float32"


def choose_jit_compile(requested=None, on_gpu=False, backend="tensorflow") -> bool:
    """``requested`` (True/False) as given; None: what is fastest where. JAX compiles its step with
    XLA everywhere (without it every op runs eagerly); PyTorch runs eagerly (torch.compile costs
    minutes of compiling); TensorFlow uses XLA on a GPU only (oneDNN is as fast on a CPU)."""
    if requested is not None:
        return bool(requested)
    if backend == "jax":
        return True
    if backend == "torch":
        return False
    return on_gpu


# What describe_device prints, as a pattern: a committed notebook's device lines must match it.
DEVICE_PATTERN = (
    r"(CPU \(\d+ cores, (bfloat16: [a-z0-9_, ]+|no native bfloat16)\)|GPU \(compute capability \d+\.\d+\)), "
    r"backend (tensorflow|jax|torch)"
)


def describe_device() -> tuple[str, bool]:
    """(what we train on, in words; whether it is a GPU)."""
    import keras

    backend = keras.backend.backend()
    capability = gpu_compute_capability()
    if capability is not None:
        return f"GPU (compute capability {capability[0]}.{capability[1]}), backend {backend}", True
    bf16 = sorted(cpu_flags() & set(CPU_BF16_FLAGS))
    return (
        f"CPU ({os.cpu_count()} cores, {'bfloat16: ' + ', '.join(bf16) if bf16 else 'no native bfloat16'}), "
        f"backend {backend}"
    ), False


def processor_name(cpuinfo="/proc/cpuinfo") -> str:
    """The GPU's name where the Keras backend trains on one, else the CPU's model name (from
    /proc/cpuinfo; the platform's own word for it elsewhere)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        elif backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus:
                return gpus[0].device_kind
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    except (RuntimeError, ValueError):
        pass
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def code_version(checkout=None) -> dict:
    """What code runs: the git commit of the checkout this package lies in, and whether the
    checkout had uncommitted changes (to tracked files); where there is no checkout (a pip
    install), the package's version instead."""
    import subprocess

    checkout = Path(checkout or Path(__file__).resolve().parents[1])

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()

    try:
        if (checkout / ".git").exists():
            return {
                "commit": git("rev-parse", "HEAD"),
                "uncommitted_changes": bool(git("status", "--porcelain", "-uno")),
            }
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib import metadata

    try:
        return {"package_version": metadata.version("alexnet-tf")}
    except metadata.PackageNotFoundError:
        return {"package_version": "unknown"}


def provenance() -> dict:
    """The code and machine behind a run's numbers, for its metrics.json: ``code_version``, the
    versions of Python, Keras, the backend's library and numpy, and the processor's name."""
    import platform

    import keras
    import numpy as np

    backend = keras.backend.backend()
    library = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    try:
        from importlib import metadata

        versions[library] = metadata.version(library)
    except Exception:  # noqa: BLE001 (an unusual install: the version is then unknown, not an error)
        versions[library] = "unknown"
    return {**code_version(), "versions": versions, "processor": processor_name()}
