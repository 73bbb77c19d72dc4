"""Experience replay as preallocated per-agent ring buffers inside the graph.

Arrays are [K, capacity, ...] tensors carried through the compiled loop and kept in variables between calls; each
agent has its own write index, fill count and capacity (agents may differ in memory size; the arrays take the
largest). Termination and truncation are stored separately, so an all-zero state is never mistaken for "no next
state" as in the book. Sampling is uniform *with* replacement (the book samples without): drawing without
replacement in-graph costs O(capacity) per step, and the two agree except while replay holds barely more than a
batch.
"""

from __future__ import annotations

from typing import NamedTuple

from dqn_core import rng
from dqn_core.network import per_agent
from dqn_core.quiet_tf import tf
from dqn_core.update import Batch


class Replay(NamedTuple):
    obs: tf.Tensor  # [K, M, obs_dim] float32
    action: tf.Tensor  # [K, M] int32
    reward: tf.Tensor  # [K, M] float32
    next_obs: tf.Tensor  # [K, M, obs_dim] float32
    terminated: tf.Tensor  # [K, M] bool
    truncated: tf.Tensor  # [K, M] bool
    index: tf.Tensor  # [K] int32, the next slot to write
    count: tf.Tensor  # [K] int32, valid transitions (<= capacity)


def empty_replay(n_agents: int, capacity: int, obs_dim: int) -> Replay:
    """Every field its own array: variables made from shared ones would share a buffer, which a compiled call
    cannot update in place (it copies instead, once)."""

    def zeros(*shape: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
        return tf.zeros([n_agents, *shape], dtype)

    return Replay(
        obs=zeros(capacity, obs_dim),
        action=zeros(capacity, dtype=tf.int32),
        reward=zeros(capacity),
        next_obs=zeros(capacity, obs_dim),
        terminated=zeros(capacity, dtype=tf.bool),
        truncated=zeros(capacity, dtype=tf.bool),
        index=zeros(dtype=tf.int32),
        count=zeros(dtype=tf.int32),
    )


def as_variables(memory: Replay) -> Replay:
    """The same arrays as `tf.Variable`s, which a compiled call updates in place (`read` at its start, `write` at
    its end: `graph.compiled_in_place`). Passed in and out as tensors, the buffers were held twice during every call
    (XLA writes its result to a new buffer while the argument is alive)."""
    return Replay(*(tf.Variable(array, trainable=False) for array in memory))


def read(variables: Replay) -> Replay:
    return Replay(*(variable.read_value() for variable in variables))


def write(variables: Replay, memory: Replay) -> None:
    for variable, array in zip(variables, memory, strict=True):
        variable.assign(array)


def add(replay: Replay, transition: Batch, store: tf.Tensor, capacity: tf.Tensor) -> Replay:
    """Write one transition per agent ([K] leading axis, no batch axis) where `store` is true.

    Agents that do not store rewrite their slot's old contents, so a full buffer loses nothing.
    """
    slots = tf.stack([tf.range(tf.shape(replay.index)[0]), replay.index], axis=1)

    def put(buffer: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
        old = tf.gather_nd(buffer, slots)
        return tf.tensor_scatter_nd_update(buffer, slots, tf.where(per_agent(store, value), value, old))

    stored = tf.cast(store, tf.int32)
    return Replay(
        obs=put(replay.obs, transition.obs),
        action=put(replay.action, transition.action),
        reward=put(replay.reward, transition.reward),
        next_obs=put(replay.next_obs, transition.next_obs),
        terminated=put(replay.terminated, transition.terminated),
        truncated=put(replay.truncated, transition.truncated),
        index=(replay.index + stored) % capacity,
        count=tf.minimum(replay.count + stored, capacity),
    )


def sample(
    replay: Replay, key: tf.Tensor, counter: tf.Tensor, batch_rows: int, stream: int | tf.Tensor = rng.STREAM_SAMPLE
) -> Batch:
    """`batch_rows` uniform draws per agent from its valid transitions (rows past an agent's batch size are
    drawn but masked by the loss, so each agent's first rows are the same whatever the population)."""
    u = rng.uniform(key, counter, stream, batch_rows)
    count = tf.maximum(replay.count, 1)[:, None]
    idx = tf.minimum(tf.cast(u * tf.cast(count, tf.float32), tf.int32), count - 1)

    def take(buffer: tf.Tensor) -> tf.Tensor:
        return tf.gather(buffer, idx, batch_dims=1)

    return Batch(
        obs=take(replay.obs),
        action=take(replay.action),
        reward=take(replay.reward),
        next_obs=take(replay.next_obs),
        terminated=take(replay.terminated),
        truncated=take(replay.truncated),
    )
