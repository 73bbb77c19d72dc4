"""The compiled inner loop: many environment steps of a whole population in one XLA call.

Every agent acts, steps its environment (an in-graph port: `cartpole`, `acrobot`, `mountaincar`), stores the
transition and takes its gradient steps per tick, exactly as the book's loop does, but all agents at once and
`ticks` times per call, so the host is visited once per chunk instead of ~65 times per step. Agents that are not
active are carried along unchanged (masked), never branched on. Everything that may differ between agents is a
per-agent tensor (`hyper.Hyper`); only shapes, the env and two feature switches (the most gradient steps per tick,
whether any agent uses Double DQN) are compiled in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

from dqn_core import acrobot, cartpole, mountaincar, replay, rng, xla
from dqn_core.hyper import Hyper
from dqn_core.network import Params, per_agent, q_values
from dqn_core.quiet_tf import tf
from dqn_core.update import AdamState, Batch, UpdateHyper, dqn_update


class State(NamedTuple):
    """Everything that changes while a population trains, with a leading agent axis."""

    params: Params
    target: Params
    adam: AdamState
    memory: replay.Replay
    physics: tf.Tensor  # [K, state_dim] float64, the env's internal state as gymnasium keeps it
    episode_step: tf.Tensor  # 0 means "reset before the next step"
    episode_return: tf.Tensor  # float32: the env's rewards so far this episode (success: >= success_threshold)
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


class Features(NamedTuple):
    """Static switches compiled into the graph: a population declares them up front (see `StreamShape`)."""

    simulator: str  # the env's in-graph port (`SIMULATORS`)
    max_steps: int
    n_actions: int
    batch_rows: int
    max_updates: int
    double: bool


SIMULATORS = {"cartpole": cartpole, "acrobot": acrobot, "mountaincar": mountaincar}


def epsilon_at(h: Hyper, total_step: tf.Tensor) -> tf.Tensor:
    """The exploration rate after `total_step` env steps: the book's exponential decay, or linear then flat."""
    steps = tf.cast(total_step, tf.float32)
    exponential = h.epsilon_stop + (h.epsilon_start - h.epsilon_stop) * tf.exp(-h.epsilon_decay_rate * steps)
    progress = tf.minimum(steps / tf.cast(h.epsilon_decay_steps, tf.float32), 1.0)
    linear = h.epsilon_stop + (h.epsilon_start - h.epsilon_stop) * (1.0 - progress)  # exactly stop at the end
    return tf.where(h.linear_epsilon, linear, exponential)


def act(
    state: State, h: Hyper, f: Features, reset_physics: tf.Tensor, observe: Callable[[tf.Tensor], tf.Tensor]
) -> tuple[State, tf.Tensor, tf.Tensor, tf.Tensor]:
    """The first part of a tick: episode starts, the target refresh, the counters, epsilon and the action.

    `reset_physics` [K, ...] float64 is what a starting episode's `physics` becomes (the port's reset draw in the
    graph; the host env's reset observation on the host path); `observe` maps `physics` to the observation.
    Returns (the state with all of that applied, epsilon, the float32 observation, the action).
    """
    live = state.active
    starting = live & tf.equal(state.episode_step, 0)

    # Episode start: gymnasium's reset distribution; the target refresh: per episode (book) or every N steps.
    physics = tf.where(starting[:, None], reset_physics, state.physics)
    episode_return = tf.where(starting, 0.0, state.episode_return)
    by_episode = starting & tf.equal(h.target_refresh_steps, 0)
    by_episode &= tf.equal(state.episodes_done % h.target_refresh_episodes, 0)
    by_steps = live & (h.target_refresh_steps > 0)
    by_steps &= tf.equal(state.total_step % tf.maximum(h.target_refresh_steps, 1), 0)
    refresh = by_episode | by_steps
    target = [tf.where(per_agent(refresh, p), p, tp) for p, tp in zip(state.params, state.target, strict=True)]
    loss_sum = tf.where(starting, 0.0, state.loss_sum)
    loss_count = tf.where(starting, 0, state.loss_count)

    live_int = tf.cast(live, tf.int32)
    episode_step = state.episode_step + live_int
    total_step = state.total_step + live_int
    epsilon = epsilon_at(h, total_step)

    # Epsilon-greedy action from the online network.
    obs = tf.cast(observe(physics), tf.float32)
    draws = rng.uniform(h.key, total_step, rng.STREAM_EXPLORE, 2)
    greedy = tf.argmax(q_values(state.params, obs[:, None, :])[:, 0, :], axis=-1, output_type=tf.int32)
    random_action = tf.minimum(tf.cast(draws[:, 1] * f.n_actions, tf.int32), f.n_actions - 1)
    action = tf.where(epsilon > draws[:, 0], random_action, greedy)

    started = state._replace(
        target=target,
        physics=physics,
        episode_return=episode_return,
        episode_step=episode_step,
        total_step=total_step,
        loss_sum=loss_sum,
        loss_count=loss_count,
    )
    return started, epsilon, obs, action


def learn(
    started: State,
    h: Hyper,
    f: Features,
    epsilon: tf.Tensor,
    obs: tf.Tensor,
    action: tf.Tensor,
    next_physics: tf.Tensor,
    next_obs: tf.Tensor,
    env_reward: tf.Tensor,
    terminated: tf.Tensor,
    env_truncated: tf.Tensor | None = None,
) -> tuple[State, Events]:
    """The last part of a tick, after the env step: truncation, the return, replay store, the gradient steps and
    the episode counters. `started`, `epsilon`, `obs` and `action` are `act`'s; `next_obs` is float32.
    `env_truncated`: a host env that cut the episode itself (the graph's own cut is at `max_steps`)."""
    live = started.active
    episode_step, total_step = started.episode_step, started.total_step
    cut = episode_step >= f.max_steps
    if env_truncated is not None:
        cut |= env_truncated
    truncated = ~terminated & cut
    done = terminated | truncated
    env_reward = tf.cast(env_reward, tf.float32)
    episode_return = started.episode_return
    episode_return = tf.where(live, episode_return + env_reward, episode_return)  # CartPole: the episode's length
    success = done & (episode_return >= tf.cast(h.success_threshold, tf.float32))
    reward = tf.where(h.env_reward, env_reward, tf.where(success, 1.0, 0.0))  # book: +1 for a success, else 0

    transition = Batch(obs, action, reward, next_obs, terminated, truncated)
    with tf.name_scope("replay_add"):
        memory = replay.add(started.memory, transition, live & (episode_step > h.warmup), h.memory_size)

    can_train = live & (memory.count >= h.batch_size)
    update_hyper = UpdateHyper(
        h.gamma, h.learning_rate, h.batch_size, h.bootstrap_truncation, h.double_dqn, h.trainable
    )
    target = started.target

    def gradient_step(u: tf.Tensor | int, params, adam, loss_sum, loss_count):
        """The u-th gradient step of this tick, on its own minibatch (u = 0 draws the book's one)."""
        if isinstance(u, int):
            stream, apply = rng.STREAM_SAMPLE, can_train
        else:
            stream = tf.where(u == 0, rng.STREAM_SAMPLE, rng.STREAM_EXTRA_SAMPLES + u)
            apply = can_train & (u < h.updates_per_step)
        with tf.name_scope("replay_sample"):
            batch = replay.sample(memory, h.key, total_step, f.batch_rows, stream)
        with tf.name_scope("update"):
            params, adam, loss = dqn_update(params, target, adam, batch, update_hyper, apply, double=f.double)
        return params, adam, loss_sum + tf.where(apply, loss, 0.0), loss_count + tf.cast(apply, tf.int32)

    loss_sum, loss_count = started.loss_sum, started.loss_count
    if f.max_updates == 1:
        params, adam, loss_sum, loss_count = gradient_step(0, started.params, started.adam, loss_sum, loss_count)
    else:  # one copy of the update in a loop: compilation time does not grow with the replay ratio

        def step(u, params, adam, loss_sum, loss_count):
            return (u + 1, *gradient_step(u, params, adam, loss_sum, loss_count))

        _, params, adam, loss_sum, loss_count = tf.while_loop(
            lambda u, *_: u < f.max_updates,
            step,
            (tf.constant(0), started.params, started.adam, loss_sum, loss_count),
        )

    ended = live & done
    consecutive = tf.where(ended, tf.where(success, started.consecutive + 1, 0), started.consecutive)
    episodes_done = started.episodes_done + tf.cast(ended, tf.int32)
    finished = ended & ((consecutive >= h.successes_to_solve) | (episodes_done >= h.max_episodes))
    nan = tf.fill(tf.shape(loss_sum), float("nan"))
    mean_loss = tf.where(loss_count > 0, loss_sum / tf.cast(tf.maximum(loss_count, 1), tf.float32), nan)

    events = Events(ended, episode_step, epsilon, mean_loss, success, consecutive)
    new_state = State(
        params=params,
        target=target,
        adam=adam,
        memory=memory,
        physics=tf.where((live & ~done)[:, None], next_physics, started.physics),
        episode_step=tf.where(ended, 0, episode_step),
        episode_return=episode_return,
        total_step=total_step,
        episodes_done=episodes_done,
        consecutive=consecutive,
        loss_sum=loss_sum,
        loss_count=loss_count,
        active=live & ~finished,
    )
    return new_state, events


def tick(state: State, h: Hyper, f: Features) -> tuple[State, Events]:
    """One environment step and `updates_per_step` gradient steps for every active agent: `act`, the in-graph
    port's step, `learn`. Name scopes (act, env, replay_add, replay_sample, update) label the compiled program's ops
    for `benchmarks/tick_profile.py`."""
    env = SIMULATORS[f.simulator]
    with tf.name_scope("env"):
        noise = tf.cast(rng.uniform(h.key, state.episodes_done, rng.STREAM_RESET, env.STATE_DIM), tf.float64)
        reset_physics = env.reset_state(noise)
    with tf.name_scope("act"):
        started, epsilon, obs, action = act(state, h, f, reset_physics, env.observe)
    with tf.name_scope("env"):
        next_physics, env_reward, terminated = env.step(started.physics, action)
        next_obs = tf.cast(env.observe(next_physics), tf.float32)
    return learn(started, h, f, epsilon, obs, action, next_physics, next_obs, env_reward, terminated)


TRACES = {"run_ticks": 0}
"""How often `run_ticks` was traced (compiled) in this process: tests check that a stream compiles once."""


def compiled_in_place(step: Callable) -> Callable:
    """`xla.compiled(step)` for a `step(state, ...) -> (state, ...)` whose `state.memory` holds the replay as
    `tf.Variable`s (`replay.as_variables`). The compiled call reads them at its start and writes them at its end, so
    XLA updates the buffers in place (passed in and returned as tensors, they existed twice while a call ran); the
    state it returns carries the same variables. `.compiled` is the `tf.function` itself; `.concrete(*args)` is the
    same call bound to the program for these arguments' signature (see `host.HostEnvs.run`)."""

    @functools.wraps(step)
    def in_place(state: State, *args, **kwargs):
        variables = state.memory
        after, *rest = step(state._replace(memory=replay.read(variables)), *args, **kwargs)
        replay.write(variables, after.memory)
        return (after._replace(memory=None), *rest)  # a tf.function returns the variables' values, not them

    compiled = xla.compiled(in_place)

    def carrying_variables(program: Callable) -> Callable:
        @functools.wraps(step)
        def call(state: State, *args, **kwargs):
            after, *rest = program(state, *args, **kwargs)
            return (after._replace(memory=state.memory), *rest)

        return call

    call = carrying_variables(compiled)
    call.compiled = compiled  # type: ignore[attr-defined]
    call.concrete = lambda *args: carrying_variables(compiled.get_concrete_function(*args))  # type: ignore[attr-defined]
    return call


def _run_ticks(state: State, h: Hyper, ticks: int, features: Features) -> tuple[State, Events, tf.Tensor]:
    TRACES["run_ticks"] += 1  # Python side effect: runs only while tracing
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
        state, row = tick(state, h, features)
        events = Events(*(tf.tensor_scatter_nd_update(e, [[t]], r[None]) for e, r in zip(events, row, strict=True)))
        return t + 1, state, events

    t, state, events = tf.while_loop(keep_going, body, (tf.constant(0), state, events))
    return state, events, t


run_ticks = compiled_in_place(_run_ticks)
"""Up to `ticks` steps of every active agent in one compiled call, compiled once per (population size, replay
capacity, network shape, ticks, features) in a process."""
