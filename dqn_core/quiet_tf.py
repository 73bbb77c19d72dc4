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
"""

from __future__ import annotations

import os
import sys


def _import_quietly():
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    if "tensorflow" in sys.modules or os.environ.get("DQN_SWEEP_TF_VERBOSE"):
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
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
