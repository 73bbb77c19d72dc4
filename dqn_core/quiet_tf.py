"""TensorFlow, imported without its C++ start-up banner on stderr.

TF 2.21 logs oneDNN/CPU-feature notices while loading and at its first op, and ignores TF_CPP_MIN_LOG_LEVEL when
it is set from inside Python, so the import and one warm-up op run with file descriptor 2 pointed at /dev/null.
Python exceptions still propagate (they are printed after stderr is restored).

Large tensors are allocated with the system allocator (`TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`, unless the environment
sets it). TensorFlow's oneDNN builds otherwise serve every tensor of 4 KB or more from a BFC pool that grows with
demand and never gives memory back, so a process kept the largest replay buffers it had ever held (30-200 MB a
population) long after their populations ended. With the system allocator, freed buffers go back to the operating
system. TensorFlow reads the variable once, at its first allocation, so it only applies when this module imports
TensorFlow.

Keras is not imported with TensorFlow. TF 2.21's `import tensorflow` imports Keras 3 eagerly (to register its
optimizers for SavedModel loading), and Keras imports scikit-learn, pandas, matplotlib and SciPy wherever they are
installed (MLflow installs them): measured on 2 cores, 1.3 s of every start-up and 170 MB of resident memory in
every process that trains, for code the trainer never calls. TensorFlow skips that import when
`TF_USE_LEGACY_KERAS` names a `tf_keras` package that is not installed, so the variable is set for the import only
(and only when the caller has not set it and `tf_keras` is absent) and removed again: `tf.keras` and `import keras`
still work, loading Keras on first use.

XLA is asked to prefer 512-bit vectors (`--xla_cpu_prefer_vector_width=512` in `XLA_FLAGS`, unless the environment
already chooses a width). XLA's default, 256, avoids the clock slow-down of AVX-512 on older Intel CPUs; on the
AMD EPYC machines this project is measured on, the wider vectors made a warm tick of 128 book agents ~8% faster
(K=64 ~4%, K=32 ~5%) and left every result bit for bit the same. On a CPU without AVX-512 the preference does
nothing. `XLA_FLAGS=--xla_cpu_prefer_vector_width=256` restores XLA's default.
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
