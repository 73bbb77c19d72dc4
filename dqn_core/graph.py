"""The compiled inner loop: many environment steps of a whole population in one XLA call.

Every agent acts, steps its CartPole, stores the transition and takes one gradient step per tick, exactly as the
book's loop does, but all agents at once and `ticks` times per call, so the host is visited once per chunk instead
of ~65 times per step. Agents that are not active are carried along unchanged (masked), never branched on.
"""

from __future__ import annotations

from typing import NamedTuple

from dqn_core import cartpole, replay, rng
from dqn_core.network import Params, q_values
from dqn_core.quiet_tf import tf
from dqn_core.update import AdamState, Batch, UpdateHyper, dqn_update


class Hyper(NamedTuple):
    """Per-agent [K] settings, constant during training."""

    key: tf.Tensor  # uint32
    gamma: tf.Tensor
    learning_rate: tf.Tensor
    epsilon_start: tf.Tensor
    epsilon_stop: tf.Tensor
    epsilon_decay_rate: tf.Tensor
    batch_size: tf.Tensor  # int32 from here on
    warmup: tf.Tensor
    memory_size: tf.Tensor
    target_refresh_episodes: tf.Tensor
    max_episodes: tf.Tensor
    success_threshold: tf.Tensor
    successes_to_solve: tf.Tensor
    env_reward: tf.Tensor  # bool
    bootstrap_truncation: tf.Tensor  # bool


class State(NamedTuple):
    """Everything that changes while a population trains, with a leading agent axis."""

    params: Params
    target: Params
    adam: AdamState
    memory: replay.Replay
    physics: tf.Tensor  # [K, 4] float64, as gymnasium keeps it
    episode_step: tf.Tensor  # 0 means "reset before the next step"
    total_step: tf.Tensor
    episodes_done: tf.Tensor
    consecutive: tf.Tensor
    loss_sum: tf.Tensor
    loss_count: tf.Tensor
    active: tf.Tensor  # bool: neither solved, out of episodes, nor stopped by its hook


class Events(NamedTuple):
    """[ticks, K] records; a row's values matter only where `ended` is true (an episode finished then)."""

    ended: tf.Tensor
    steps: tf.Tensor
    epsilon: tf.Tensor
    mean_loss: tf.Tensor
    success: tf.Tensor
    consecutive: tf.Tensor


def _bcast(mask: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.reshape(mask, [-1] + [1] * (len(like.shape) - 1))


def tick(state: State, h: Hyper, max_steps: int, n_actions: int, batch_rows: int) -> tuple[State, Events]:
    """One environment step and one gradient step for every active agent."""
    live = state.active
    starting = live & tf.equal(state.episode_step, 0)

    # Episode start: gymnasium's reset (uniform +-0.05) and the book's target refresh.
    noise = tf.cast(rng.uniform(h.key, state.episodes_done, rng.STREAM_RESET, 4), tf.float64)
    physics = tf.where(starting[:, None], (noise * 2.0 - 1.0) * cartpole.RESET_BOUND, state.physics)
    refresh = starting & tf.equal(state.episodes_done % h.target_refresh_episodes, 0)
    target = [tf.where(_bcast(refresh, p), p, tp) for p, tp in zip(state.params, state.target, strict=True)]
    loss_sum = tf.where(starting, 0.0, state.loss_sum)
    loss_count = tf.where(starting, 0, state.loss_count)

    live_int = tf.cast(live, tf.int32)
    episode_step = state.episode_step + live_int
    total_step = state.total_step + live_int
    epsilon = h.epsilon_stop + (h.epsilon_start - h.epsilon_stop) * tf.exp(
        -h.epsilon_decay_rate * tf.cast(total_step, tf.float32)
    )

    # Epsilon-greedy action from the online network.
    obs = tf.cast(physics, tf.float32)
    draws = rng.uniform(h.key, total_step, rng.STREAM_EXPLORE, 2)
    greedy = tf.argmax(q_values(state.params, obs[:, None, :])[:, 0, :], axis=-1, output_type=tf.int32)
    random_action = tf.minimum(tf.cast(draws[:, 1] * n_actions, tf.int32), n_actions - 1)
    action = tf.where(epsilon > draws[:, 0], random_action, greedy)

    next_physics, terminated = cartpole.cartpole_step(physics, action)
    truncated = ~terminated & (episode_step >= max_steps)
    done = terminated | truncated
    success = done & (episode_step >= h.success_threshold)
    reward = tf.where(h.env_reward | success, 1.0, 0.0)  # CartPole's env reward is 1 on every step

    transition = Batch(obs, action, reward, tf.cast(next_physics, tf.float32), terminated, truncated)
    memory = replay.add(state.memory, transition, live & (episode_step > h.warmup), h.memory_size)

    can_train = live & (memory.count >= h.batch_size)
    batch = replay.sample(memory, h.key, total_step, batch_rows)
    update_hyper = UpdateHyper(h.gamma, h.learning_rate, h.batch_size, h.bootstrap_truncation)
    params, adam, loss = dqn_update(state.params, target, state.adam, batch, update_hyper, can_train)
    loss_sum = loss_sum + tf.where(can_train, loss, 0.0)
    loss_count = loss_count + tf.cast(can_train, tf.int32)

    ended = live & done
    consecutive = tf.where(ended, tf.where(success, state.consecutive + 1, 0), state.consecutive)
    episodes_done = state.episodes_done + tf.cast(ended, tf.int32)
    finished = ended & ((consecutive >= h.successes_to_solve) | (episodes_done >= h.max_episodes))
    nan = tf.fill(tf.shape(loss_sum), float("nan"))
    mean_loss = tf.where(loss_count > 0, loss_sum / tf.cast(tf.maximum(loss_count, 1), tf.float32), nan)

    events = Events(ended, episode_step, epsilon, mean_loss, success, consecutive)
    new_state = State(
        params=params,
        target=target,
        adam=adam,
        memory=memory,
        physics=tf.where((live & ~done)[:, None], next_physics, physics),
        episode_step=tf.where(ended, 0, episode_step),
        total_step=total_step,
        episodes_done=episodes_done,
        consecutive=consecutive,
        loss_sum=loss_sum,
        loss_count=loss_count,
        active=live & ~finished,
    )
    return new_state, events


def _run_ticks(
    state: State, h: Hyper, ticks: int, max_steps: int, n_actions: int, batch_rows: int
) -> tuple[State, Events, tf.Tensor]:
    n_agents = tf.shape(state.active)[0]
    events = Events(
        ended=tf.zeros([ticks, n_agents], tf.bool),
        steps=tf.zeros([ticks, n_agents], tf.int32),
        epsilon=tf.zeros([ticks, n_agents], tf.float32),
        mean_loss=tf.zeros([ticks, n_agents], tf.float32),
        success=tf.zeros([ticks, n_agents], tf.bool),
        consecutive=tf.zeros([ticks, n_agents], tf.int32),
    )

    def keep_going(t: tf.Tensor, state: State, events: Events) -> tf.Tensor:
        return (t < ticks) & tf.reduce_any(state.active)

    def body(t: tf.Tensor, state: State, events: Events) -> tuple[tf.Tensor, State, Events]:
        state, row = tick(state, h, max_steps, n_actions, batch_rows)
        events = Events(*(tf.tensor_scatter_nd_update(e, [[t]], r[None]) for e, r in zip(events, row, strict=True)))
        return t + 1, state, events

    t, state, events = tf.while_loop(keep_going, body, (tf.constant(0), state, events))
    return state, events, t


run_ticks = tf.function(_run_ticks, jit_compile=True)
"""Compiled once per (population bucket, replay capacity, batch rows, network shape, ticks) in a process."""
