"""XLA-compiled trainer functions, traced without a Python stack trace per graph node.

TensorFlow records the creating Python stack on every op it traces, and tf2xla freezes those stacks into strings
while it compiles; TF 2.21 keeps every compiled program (and its traced graph) for the life of the process (the
XLA compilation cache has no eviction). For the trainer's unrolled graphs that is a large part of each program's
resident memory, paid again for every population size, env and network shape a process compiles. The stacks
only serve error messages that point into our own graph-building code, so the trainer's traced functions skip
them. TensorFlow has no public switch for this: `compiled` swaps the one binding that attaches a stack to a new
op (`TF_SetOpStackTrace`) for a thread-aware no-op while our functions trace, and leaves TensorFlow untouched where
that binding does not exist.

A traced graph also keeps the handle of every `tf.Variable` passed to it while tracing (`FuncGraph` remembers
them to tell arguments from captures, and only needs that while it traces). The trainer passes its replay buffers
as variables, so each program would hold its first run's buffers for the process. `compiled` forgets those
handles once tracing ends.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from dqn_core.quiet_tf import tf

try:
    from tensorflow.python.client import pywrap_tf_session
except ImportError:  # a TensorFlow without this private module: trace with stacks, as plain tf.function does
    pywrap_tf_session = None

_tracing = threading.local()


def _install_stack_skipping_hook() -> None:
    """Wrap `TF_SetOpStackTrace` once per process; ops created outside our traced functions keep their stacks."""
    current = getattr(pywrap_tf_session, "TF_SetOpStackTrace", None)
    if current is None or getattr(current, "_dqn_sweep_hook", False):
        return

    def set_op_stack_trace(c_op, stack) -> None:
        if not getattr(_tracing, "active", False):
            current(c_op, stack)

    set_op_stack_trace._dqn_sweep_hook = True  # type: ignore[attr-defined]
    pywrap_tf_session.TF_SetOpStackTrace = set_op_stack_trace


def _forget_variable_arguments_after_tracing() -> None:
    """Drop the traced graph's references to the variables it was traced with, once it is built."""
    graph = tf.compat.v1.get_default_graph()
    handles = getattr(graph, "_resource_tensor_inputs", None)
    if handles is not None and hasattr(graph, "_add_scope_exit_callback"):
        graph._add_scope_exit_callback(handles.clear)


def compiled(fn: Callable) -> Callable:
    """`tf.function(fn, jit_compile=True)` whose tracing attaches no Python stack to the ops it creates and whose
    graph does not keep the variables it was traced with alive."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        _install_stack_skipping_hook()  # here, not at import: runs only while tracing
        _forget_variable_arguments_after_tracing()
        outer = getattr(_tracing, "active", False)
        _tracing.active = True
        try:
            return fn(*args, **kwargs)
        finally:
            _tracing.active = outer

    return tf.function(traced, jit_compile=True)
