"""The Q-network as stacked per-agent weights: every layer is W [K, in, out], b [K, out].

One fused computation evaluates K independent MLPs, which is what makes a population cost about as much as a
single agent on this hardware. Initialisation matches Keras' Dense defaults (Glorot-uniform kernel, zero bias).

Layers are written as explicit sums in a fixed order (with a matching hand-written gradient) instead of
`tf.matmul`: XLA picks a different dot kernel once K x batch grows, which rounds the weight gradient differently
(1 ulp, seen at K=16 with 128 rows) and would make an agent's result depend on the population it trained in.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from dqn_core.quiet_tf import tf

Params = list[tf.Tensor]  # [W0, b0, W1, b1, ...], each with a leading agent axis


def layer_sizes(obs_dim: int, hidden_sizes: Sequence[int], n_actions: int) -> list[int]:
    return [obs_dim, *hidden_sizes, n_actions]


def init_params(sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """One agent's weights (no agent axis), drawn from its own generator so population size cannot matter."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    params: list[np.ndarray] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32))
        params.append(np.zeros(fan_out, dtype=np.float32))
    return params


def pad_params(params: Sequence[np.ndarray], shape_sizes: Sequence[int]) -> tuple[list[np.ndarray], list[bool]]:
    """Embed one agent's weights in a wider and deeper network that computes exactly the same function.

    Extra units get zero weights and bias: they output ReLU(0) = 0, their gradients are exactly zero, and zero
    terms appended to the fixed-order sums of `dense` leave every partial sum unchanged. Extra layers are inserted
    after the last hidden layer as frozen identity maps (ReLU of a non-negative input is that input, and the
    gradient through them is the upstream gradient, bit for bit). Returns the padded weights and, per layer,
    whether it trains.
    """
    n_real = len(params) // 2
    n_shape = len(shape_sizes) - 1
    padded: list[np.ndarray] = []
    trainable: list[bool] = []
    last_hidden = params[2 * (n_real - 2)].shape[1] if n_real >= 2 else 0
    for layer in range(n_shape):
        fan_in, fan_out = shape_sizes[layer], shape_sizes[layer + 1]
        kernel = np.zeros((fan_in, fan_out), np.float32)
        bias = np.zeros(fan_out, np.float32)
        if layer < n_real - 1 or layer == n_shape - 1:  # a real hidden layer, or the output layer
            source = layer if layer < n_real - 1 else n_real - 1
            real_kernel, real_bias = params[2 * source], params[2 * source + 1]
            kernel[: real_kernel.shape[0], : real_kernel.shape[1]] = real_kernel
            bias[: real_bias.shape[0]] = real_bias
            trainable.append(True)
        else:  # an identity layer that only makes this agent as deep as the widest network
            kernel[np.arange(last_hidden), np.arange(last_hidden)] = 1.0
            trainable.append(False)
        padded += [kernel, bias]
    return padded, trainable


def unpad_params(padded: Sequence[np.ndarray], real_sizes: Sequence[int]) -> list[np.ndarray]:
    """The inverse of `pad_params`: the agent's own weights, in its own shapes."""
    n_real = len(real_sizes) - 1
    n_shape = len(padded) // 2
    params: list[np.ndarray] = []
    for layer in range(n_real):
        source = layer if layer < n_real - 1 else n_shape - 1
        fan_in, fan_out = real_sizes[layer], real_sizes[layer + 1]
        params.append(np.ascontiguousarray(padded[2 * source][:fan_in, :fan_out]))
        params.append(np.ascontiguousarray(padded[2 * source + 1][:fan_out]))
    return params


def q_values(params: Params, obs: tf.Tensor, one: tf.Tensor | None = None) -> tf.Tensor:
    """obs [K, B, in] -> Q [K, B, n_actions]; ReLU on every hidden layer, linear output (the book's MLP).

    `one` [K] (ones XLA cannot fold, see `stored`) keeps each hidden activation in memory for the backward pass;
    without it XLA recomputes every hidden layer inside the gradient of the ReLU. Only worth it under a gradient.
    """
    x = obs
    n_layers = len(params) // 2
    for i in range(n_layers):
        x = dense(x, params[2 * i], params[2 * i + 1])
        if i < n_layers - 1:
            x = tf.nn.relu(x) if one is None else _relu_stored(x, one)
    return x


def per_agent(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """A [K] tensor shaped to broadcast against `like` [K, ...]: one value per agent, along the agent axis."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))


def stored(x: tf.Tensor, one: tf.Tensor) -> tf.Tensor:
    """x / one for a [K] `one` that holds ones the compiler cannot prove are ones: the same bits as x, computed once.

    XLA fuses a cheap elementwise producer into every consumer, recomputing it in each; a floating-point divide is
    an op it will not duplicate, so x is computed once and stored for all its readers."""
    return x / per_agent(one, x)


@tf.custom_gradient
def _relu_stored(z: tf.Tensor, one: tf.Tensor):
    """ReLU whose gradient masks with the stored activation (as TensorFlow's own ReLU gradient does, `a > 0`)."""
    a = stored(tf.nn.relu(z), one)

    def grad(da: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.where(a > 0, da, tf.zeros_like(da)), tf.zeros_like(one)

    return a, grad


ROW_CHUNK = 32
"""Minibatch rows are summed left to right within chunks of this many, and chunk sums pairwise (a halving tree).
A batch of up to 32 rows is one chunk, so its sums are plain left-to-right sums; larger batches compile a graph
that grows with the chunk size instead of the batch size. Zero rows padded onto a batch fill whole zero chunks
(or the tail of the last one), which leave every partial sum unchanged."""


def _ordered_products_sum(a: tf.Tensor, b: tf.Tensor, axis: int) -> tf.Tensor:
    """a_0 * b_0 + a_1 * b_1 + ..., added left to right, over the indices along `axis` of two tensors that already
    hold the size-one axes to broadcast.

    One Unpack op per operand instead of a StridedSlice (with its three constants) per index: XLA gets the same
    slices, while the traced graph, which TensorFlow keeps for the whole process with a stack trace per op, is much
    smaller (and with it the memory each compiled population size holds)."""
    pairs = zip(tf.unstack(a, axis=axis), tf.unstack(b, axis=axis), strict=True)
    a_0, b_0 = next(pairs)
    total = a_0 * b_0
    for a_i, b_i in pairs:
        total = total + a_i * b_i
    return total


def _row_products_sum(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """sum over rows r of a[:, r, :, None] * b[:, r, None, :]: [K, B, m] x [K, B, n] -> [K, m, n]."""
    rows = a.shape[1]
    if rows <= ROW_CHUNK:
        return _ordered_products_sum(a[:, :, :, None], b[:, :, None, :], axis=1)
    chunks = 1 << (-(-rows // ROW_CHUNK) - 1).bit_length()  # a power of two, so the tree halves evenly
    pad = chunks * ROW_CHUNK - rows
    a = tf.reshape(tf.pad(a, [[0, 0], [0, pad], [0, 0]]), [-1, chunks, ROW_CHUNK, a.shape[2]])
    b = tf.reshape(tf.pad(b, [[0, 0], [0, pad], [0, 0]]), [-1, chunks, ROW_CHUNK, b.shape[2]])
    partial = _ordered_products_sum(a[:, :, :, :, None], b[:, :, :, None, :], axis=2)
    while chunks > 1:
        chunks //= 2
        partial = partial[:, :chunks] + partial[:, chunks:]
    return partial[:, 0]


@tf.custom_gradient
def dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor):
    """x [K, B, in] @ kernel [K, in, out] + bias [K, out], every sum in a fixed order.

    Element-wise code is the same for any K, so each agent's numbers are too. Zero rows padded onto the batch
    (and zero units padded onto a layer) come last in their sums and leave them unchanged, as s + 0 == s.
    """
    y = _ordered_products_sum(x[:, :, :, None], kernel[:, None, :, :], axis=2) + bias[:, None, :]

    def grad(dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        dx = _ordered_products_sum(dy[:, :, None, :], kernel[:, None, :, :], axis=3)
        dkernel = _row_products_sum(x, dy)
        dbias = _row_products_sum(tf.ones_like(dy[:, :, :1]), dy)[:, 0, :]
        return dx, dkernel, dbias

    return y, grad


def q_values_numpy(params: Sequence[np.ndarray], obs: np.ndarray) -> np.ndarray:
    """One agent's Q-values for obs [B, in] in NumPy: evaluation and rendering need no graph."""
    x = obs.astype(np.float32)
    n_layers = len(params) // 2
    for i in range(n_layers):
        x = x @ params[2 * i] + params[2 * i + 1]
        if i < n_layers - 1:
            x = np.maximum(x, 0.0)
    return x
