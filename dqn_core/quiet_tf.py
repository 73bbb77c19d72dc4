"""TensorFlow, imported without its C++ start-up banner on stderr.

TF 2.21 logs oneDNN/CPU-feature notices while loading and at its first op, and ignores TF_CPP_MIN_LOG_LEVEL when
it is set from inside Python, so the import and one warm-up op run with file descriptor 2 pointed at /dev/null.
Python exceptions still propagate (they are printed after stderr is restored).

Large tensors come from the system allocator (`TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`, unless the environment sets
it): oneDNN builds otherwise serve them from a pool that never gives memory back, so a process kept the largest
replay buffers it had ever held. TensorFlow reads the variable at its first allocation, so it only applies when
this module imports TensorFlow.

Keras is not imported with TensorFlow: TF 2.21 imports Keras 3 eagerly, which imports scikit-learn, pandas,
matplotlib and SciPy where installed (MLflow installs them), costing start-up time and memory in every training
process for code the trainer never calls. TensorFlow skips that import when `TF_USE_LEGACY_KERAS` names a
`tf_keras` package that is not installed, so the variable is set for the import only (unless the caller set it or
`tf_keras` is present) and removed again; `tf.keras` and `import keras` still load Keras on first use.

XLA is asked to prefer 512-bit vectors (`--xla_cpu_prefer_vector_width=512` in `XLA_FLAGS`, unless the environment
already chooses a width): on the AMD EPYC machines this project runs on, warm ticks are faster and every result is
bit for bit the same; on a CPU without AVX-512 it does nothing. XLA's default, 256 (it avoids AVX-512's clock
slow-down on older Intel CPUs), is `XLA_FLAGS=--xla_cpu_prefer_vector_width=256`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys


@contextlib.contextmanager
def _without_eager_keras():
    if "TF_USE_LEGACY_KERAS" in os.environ or importlib.util.find_spec("tf_keras") is not None:
        yield
        return
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        yield
    finally:
        del os.environ["TF_USE_LEGACY_KERAS"]


def _prefer_wide_vectors() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_prefer_vector_width" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_prefer_vector_width=512".strip()


def _import_quietly():
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    _prefer_wide_vectors()
    if "tensorflow" in sys.modules or os.environ.get("DQN_SWEEP_TF_VERBOSE"):
        with _without_eager_keras():
            import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with _without_eager_keras():
            import tensorflow

        tensorflow.constant(0.0) + 1.0  # the first op prints the CPU-feature notice
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


tf = _import_quietly()
# One compilation per (population size, shape, env) is by design (`graph.run_ticks`); a process that trains several
# (a benchmark, the stream's shrinking tail) would otherwise get TF's "triggered tf.function retracing" warning.
tf.get_logger().setLevel("ERROR")
