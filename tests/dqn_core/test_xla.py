"""The trainer's compiled functions trace without per-op Python stacks (resident memory per compiled program), do
not keep the variables they were traced with alive, and compute exactly what a plain `tf.function` computes."""

from __future__ import annotations

import gc
import inspect
import weakref

import numpy as np

from dqn_core import graph, host, xla
from dqn_core.quiet_tf import tf
from dqn_core.stream import StreamShape, _Lane

SPEC = tf.TensorSpec([3], tf.float32)


def _scaled_sine(x: tf.Tensor) -> tf.Tensor:
    return tf.sin(x) * 2.0


def _add_one(variable: tf.Variable) -> tf.Tensor:
    variable.assign(variable.read_value() + 1.0)
    return tf.constant(0)


def _op(concrete, op_type: str):
    return next(op for op in concrete.graph.get_operations() if op.type == op_type)


def test_compiled_ops_carry_no_stack_while_other_graphs_keep_theirs():
    ours = xla.compiled(_scaled_sine)
    plain = tf.function(_scaled_sine, jit_compile=True)

    assert _op(ours.get_concrete_function(SPEC), "Sin").traceback is None
    plain_stack = _op(plain.get_concrete_function(SPEC), "Sin").traceback
    assert plain_stack is not None and any("test_xla.py" in frame.filename for frame in plain_stack)

    x = tf.constant([0.5, -1.25, 3.0])
    np.testing.assert_array_equal(ours(x).numpy(), plain(x).numpy())


def test_the_trainer_functions_are_traced_without_op_stacks():
    stream = _Lane(StreamShape(), 1, 1)
    ticks = graph.run_ticks.compiled.get_concrete_function(stream.state, stream.hyper, 2, stream.features)
    assert _op(ticks, "StatelessWhile").traceback is None  # the tick loop, its body built inside it
    functions = (host.host_act, host.host_learn.compiled, host.port_reset)
    wrapped = [inspect.unwrap(f.python_function) for f in functions]
    assert wrapped == [host._act, host._learn, host._port_reset]  # built by xla.compiled, like run_ticks


def test_a_variable_passed_while_tracing_is_freed_with_its_last_python_reference():
    plain = tf.function(_add_one, jit_compile=True)
    for function, kept_by_the_trace in ((xla.compiled(_add_one), False), (plain, True)):
        variable = tf.Variable(tf.zeros([3]))
        handle = weakref.ref(variable.handle)  # its buffer lives as long as the handle
        function(variable)
        np.testing.assert_array_equal(variable.numpy(), [1.0, 1.0, 1.0])
        del variable
        gc.collect()
        assert (handle() is not None) == kept_by_the_trace  # plain tf.function keeps it for the process
