"""The book's DQN update for K agents at once: Huber TD loss, then one Adam step per agent.

The book builds targets from the online network's own predictions and overwrites the taken action's entry, then
calls Keras `fit` with Huber loss; the untaken entries have zero error, so the loss equals the taken action's Huber
error divided by the number of actions (Keras averages over the output axis). We compute exactly that, without
the extra forward passes. Adam follows Keras 3's update (epsilon added to sqrt(v), bias correction in the step).
"""

from __future__ import annotations

from typing import NamedTuple

from dqn_core.network import Params, q_values, stored
from dqn_core.quiet_tf import tf

ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7  # Keras' default
HUBER_DELTA = 1.0


class Batch(NamedTuple):
    """A minibatch per agent: obs/next_obs [K, B, obs_dim] float32, the rest [K, B]."""

    obs: tf.Tensor
    action: tf.Tensor
    reward: tf.Tensor
    next_obs: tf.Tensor
    terminated: tf.Tensor
    truncated: tf.Tensor


class AdamState(NamedTuple):
    m: list[tf.Tensor]
    v: list[tf.Tensor]
    t: tf.Tensor  # [K] int32: updates applied so far, per agent


class UpdateHyper(NamedTuple):
    """Per-agent [K] values the update needs."""

    gamma: tf.Tensor
    learning_rate: tf.Tensor
    batch_size: tf.Tensor  # int32; rows beyond it in the padded batch are masked out
    bootstrap_truncation: tf.Tensor  # bool
    double_dqn: tf.Tensor  # bool
    trainable: tf.Tensor  # [K, layers] bool: False for the identity layers that pad a shallower network


def td_targets(
    target_params: Params, batch: Batch, hyper: UpdateHyper, online_params: Params | None = None
) -> tf.Tensor:
    """r + gamma * max_a Q_target(s', a), or r where the transition ends the return.

    With `online_params` given, agents with `double_dqn` use Q_target(s', argmax_a Q_online(s', a)) instead
    (van Hasselt et al. 2016); the others get the plain max, bit for bit.
    """
    q_next = q_values(target_params, batch.next_obs)
    max_next = tf.reduce_max(q_next, axis=-1)
    if online_params is not None:
        chosen = tf.argmax(q_values(online_params, batch.next_obs), axis=-1, output_type=tf.int32)
        double_next = tf.gather(q_next, chosen, batch_dims=2)
        max_next = tf.where(hyper.double_dqn[:, None], double_next, max_next)
    ends = tf.where(hyper.bootstrap_truncation[:, None], batch.terminated, batch.terminated | batch.truncated)
    return tf.where(ends, batch.reward, batch.reward + hyper.gamma[:, None] * max_next)


def huber_td_loss(
    params: Params, batch: Batch, targets: tf.Tensor, hyper: UpdateHyper, one: tf.Tensor | None = None
) -> tf.Tensor:
    """Per-agent loss [K], as Keras' Huber with mean reduction would report it for the book's targets. `one`: see
    `network.q_values`."""
    q = q_values(params, batch.obs, one)
    n_actions = tf.cast(tf.shape(q)[-1], tf.float32)
    q_taken = tf.gather(q, batch.action, batch_dims=2)
    abs_error = tf.abs(q_taken - targets)
    quadratic = tf.minimum(abs_error, HUBER_DELTA)
    linear = abs_error - quadratic
    per_sample = (0.5 * tf.square(quadratic) + HUBER_DELTA * linear) / n_actions
    rows = tf.range(tf.shape(per_sample)[1])[None, :]
    mask = tf.cast(rows < hyper.batch_size[:, None], tf.float32)
    return _pairwise_row_sum(per_sample * mask) / tf.cast(hyper.batch_size, tf.float32)


def _pairwise_row_sum(x: tf.Tensor) -> tf.Tensor:
    """Sum [K, B] over B in a fixed halving order, so zero rows padded on by a population with larger batches
    leave the sum bit-identical (XLA's own reduction order depends on B)."""
    rows = x.shape[1]
    width = 1 << max(0, (rows - 1).bit_length())
    x = tf.pad(x, [[0, 0], [0, width - rows]])
    while width > 1:
        width //= 2
        x = x[:, :width] + x[:, width:]
    return x[:, 0]


def dqn_update(
    params: Params,
    target_params: Params,
    adam: AdamState,
    batch: Batch,
    hyper: UpdateHyper,
    apply: tf.Tensor,
    *,
    double: bool = False,
) -> tuple[Params, AdamState, tf.Tensor]:
    """One gradient step for the agents where `apply` [K] is true; others keep weights and optimizer state.

    `double` (static) compiles the Double DQN target in; each agent's `hyper.double_dqn` then picks its target.
    """
    online = params if double else None
    targets = tf.stop_gradient(td_targets(target_params, batch, hyper, online))
    # Ones XLA cannot fold (updates so far are >= 0), so what several ops read is computed once (`network.stored`):
    # XLA had summed each weight gradient twice (once per Adam moment) and each hidden layer twice (again in its
    # ReLU's gradient). Same bits, fewer arithmetic ops.
    one = tf.cast(tf.minimum(adam.t, 0) + 1, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = huber_td_loss(params, batch, targets, hyper, one)
        total = tf.reduce_sum(loss)  # agents share no weights, so each gets its own gradient
    grads = [stored(g, one) for g in tape.gradient(total, params)]

    t = adam.t + tf.cast(apply, tf.int32)
    step = tf.cast(t, tf.float32)
    alpha = hyper.learning_rate * tf.sqrt(1.0 - ADAM_BETA_2**step) / (1.0 - ADAM_BETA_1**step)
    new_params, new_m, new_v = [], [], []
    for index, (p, g, m, v) in enumerate(zip(params, grads, adam.m, adam.v, strict=True)):
        shape = [-1] + [1] * (len(p.shape) - 1)
        on = tf.reshape(apply & hyper.trainable[:, index // 2], shape)
        # The step reads the moments already kept (equal to the new ones wherever it applies). When it read the
        # unselected new moments as well, XLA copied every moment buffer once per tick; same bits without.
        m_kept = tf.where(on, m + (g - m) * (1.0 - ADAM_BETA_1), m)
        v_kept = tf.where(on, v + (tf.square(g) - v) * (1.0 - ADAM_BETA_2), v)
        p_next = p - (m_kept * tf.reshape(alpha, shape)) / (tf.sqrt(v_kept) + ADAM_EPSILON)
        new_params.append(tf.where(on, p_next, p))
        new_m.append(m_kept)
        new_v.append(v_kept)
    return new_params, AdamState(new_m, new_v, t), loss
