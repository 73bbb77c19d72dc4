"""The Q-network as stacked per-agent weights: every layer is W [K, in, out], b [K, out].

One batched matmul then evaluates K independent MLPs, which is what makes a population cost about as much as a
single agent on this hardware. Initialisation matches Keras' Dense defaults (Glorot-uniform kernel, zero bias).
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
        x = tf.matmul(x, params[2 * i]) + params[2 * i + 1][:, None, :]
        if i < n_layers - 1:
            x = tf.nn.relu(x)
    return x


def q_values_numpy(params: Sequence[np.ndarray], obs: np.ndarray) -> np.ndarray:
    """One agent's Q-values for obs [B, in] in NumPy: evaluation and rendering need no graph."""
    x = obs.astype(np.float32)
    n_layers = len(params) // 2
    for i in range(n_layers):
        x = x @ params[2 * i] + params[2 * i + 1]
        if i < n_layers - 1:
            x = np.maximum(x, 0.0)
    return x
