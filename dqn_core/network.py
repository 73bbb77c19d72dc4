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


def q_values(params: Params, obs: tf.Tensor) -> tf.Tensor:
    """obs [K, B, in] -> Q [K, B, n_actions]; ReLU on every hidden layer, linear output (the book's MLP)."""
    x = obs
    n_layers = len(params) // 2
    for i in range(n_layers):
        x = dense(x, params[2 * i], params[2 * i + 1])
        if i < n_layers - 1:
            x = tf.nn.relu(x)
    return x


def _ordered_sum(terms: list[tf.Tensor]) -> tf.Tensor:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


@tf.custom_gradient
def dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor):
    """x [K, B, in] @ kernel [K, in, out] + bias [K, out], every sum taken left to right.

    Element-wise code is the same for any K, so each agent's numbers are too. Zero rows padded onto the batch
    leave the kernel gradient unchanged, as x + 0 == x.
    """
    n_in = kernel.shape[1]
    y = _ordered_sum([x[:, :, i, None] * kernel[:, None, i, :] for i in range(n_in)]) + bias[:, None, :]

    def grad(dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        n_out, rows = kernel.shape[2], x.shape[1]
        dx = _ordered_sum([dy[:, :, o, None] * kernel[:, None, :, o] for o in range(n_out)])
        dkernel = _ordered_sum([x[:, b, :, None] * dy[:, b, None, :] for b in range(rows)])
        dbias = _ordered_sum([dy[:, b, :] for b in range(rows)])
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
