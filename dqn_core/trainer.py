"""Train one agent or a population of independent agents; a single run is a population of one.

The host loop calls the compiled chunk (`graph.run_ticks`), turns its episode-end records into `EpisodeStats`,
calls the per-episode hook (returning False stops that agent: how pruning plugs in), and shrinks the population
to the next power of two as agents finish, so finished agents stop costing compute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dqn_core import graph, replay
from dqn_core.agent import TrainedAgent
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.network import init_params, layer_sizes
from dqn_core.quiet_tf import tf
from dqn_core.rng import agent_key
from dqn_core.update import AdamState

DEFAULT_TICKS_PER_CALL = 256

STOP_SOLVED = "solved"
STOP_MAX_EPISODES = "max_episodes"
STOP_HOOK = "stopped"


@dataclass(frozen=True)
class EpisodeStats:
    """What the per-episode hook sees after each finished episode."""

    episode: int
    steps: int
    epsilon: float
    mean_loss: float  # NaN when no gradient step happened in the episode
    success: bool
    consecutive_successes: int
    total_steps: int


@dataclass(frozen=True)
class TrainResult:
    """One agent's outcome. `episodes_to_solve` is the objective (None when never solved)."""

    config: TrainConfig
    seed: int
    episodes_to_solve: int | None
    steps: np.ndarray  # per episode
    epsilons: np.ndarray  # at each episode's last step
    losses: np.ndarray  # mean Huber loss per episode (NaN before training starts)
    successes: np.ndarray  # bool per episode
    total_env_steps: int
    wall_time_s: float  # from the population's start until this agent finished
    stop_reason: str  # "solved", "max_episodes" or "stopped" (by the hook)
    weights: list[np.ndarray] = field(repr=False)

    @property
    def solved(self) -> bool:
        return self.episodes_to_solve is not None

    @property
    def episodes(self) -> int:
        return len(self.steps)

    def agent(self) -> TrainedAgent:
        return TrainedAgent(config=self.config, weights=self.weights)


EpisodeHook = Callable[[int, EpisodeStats], "bool | None"]
"""on_episode(agent_index, stats); return False to stop that agent."""


def train(config: TrainConfig, *, seed: int = 0, on_episode: EpisodeHook | None = None) -> TrainResult:
    """Train one agent: the same code path, and bit for bit the same result, as inside any population."""
    return train_population([(config, seed)], on_episode=on_episode)[0]


def train_population(
    members: Sequence[tuple[TrainConfig, int]],
    *,
    on_episode: EpisodeHook | None = None,
    ticks_per_call: int = DEFAULT_TICKS_PER_CALL,
    batch_rows: int | None = None,
) -> list[TrainResult]:
    """Train independent (config, seed) agents in lockstep; results come back in the order given.

    `batch_rows` pads every minibatch to at least that many (masked) rows: a sweep passes its largest batch size
    so every batch of trials reuses one compiled graph. Results do not depend on it.
    """
    if not members:
        raise ConfigError("a population needs at least one (config, seed) member")
    _check_shared(members)
    run = _PopulationRun(members, ticks_per_call, batch_rows or 0)
    return run.train(on_episode)


def _check_shared(members: Sequence[tuple[TrainConfig, int]]) -> None:
    """Shapes are compiled into the graph, so these must agree; everything else may differ per agent."""
    first = members[0][0]
    for config, seed in members:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        for name in ("env_id", "hidden_sizes"):
            if getattr(config, name) != getattr(first, name):
                raise ConfigError(
                    f"all agents in a population must share {name}: got {getattr(first, name)!r} "
                    f"and {getattr(config, name)!r}"
                )


MIN_POPULATION = 2
"""XLA specialises a population of one (a size-1 axis is folded away), which rounds some sums differently; padding
a lone agent with an idle slot keeps alone and population runs bitwise equal."""


def _bucket(n: int) -> int:
    """Population sizes are padded to powers of two so a sweep compiles only a handful of graph shapes."""
    return max(MIN_POPULATION, 1 << math.ceil(math.log2(max(n, 1))))


@dataclass
class _Record:
    steps: list[int] = field(default_factory=list)
    epsilons: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    episodes_to_solve: int | None = None
    stop_reason: str | None = None
    wall_time_s: float = 0.0
    weights: list[np.ndarray] | None = None


class _PopulationRun:
    """The host side of one population: slot bookkeeping, hooks, compaction."""

    def __init__(self, members: Sequence[tuple[TrainConfig, int]], ticks_per_call: int, min_rows: int) -> None:
        if ticks_per_call < 1:
            raise ConfigError(f"ticks_per_call must be >= 1, got {ticks_per_call}")
        self.members = list(members)
        self.ticks = ticks_per_call
        env = members[0][0].env
        self.max_steps, self.n_actions = env.max_steps, env.n_actions
        self.batch_rows = max(min_rows, *(c.batch_size for c, _ in members))
        self.records = [_Record() for _ in members]
        size = _bucket(len(members))
        self.slots = np.array([*range(len(members)), *[-1] * (size - len(members))])
        self.hyper = _build_hyper([members[max(m, 0)] for m in self.slots])
        self.state = _initial_state(members, self.slots, env.obs_dim)

    def train(self, on_episode: EpisodeHook | None) -> list[TrainResult]:
        start = time.perf_counter()
        while True:
            self.state, events, _ = graph.run_ticks(
                self.state, self.hyper, self.ticks, self.max_steps, self.n_actions, self.batch_rows
            )
            stopped = self._dispatch(events, on_episode, time.perf_counter() - start)
            active = self.state.active.numpy()
            if stopped:
                active &= ~np.isin(np.arange(len(self.slots)), stopped)
                self.state = self.state._replace(active=tf.constant(active))
            if not active.any():
                break
            if active.sum() <= len(self.slots) // 2:
                self._compact(active)
        self._harvest_weights(np.arange(len(self.slots)))
        return [self._result(i) for i in range(len(self.members))]

    def _dispatch(self, events: graph.Events, on_episode: EpisodeHook | None, elapsed: float) -> list[int]:
        """Record every finished episode in tick order and run the hook; return slots the hook stopped."""
        ended = events.ended.numpy()
        if not ended.any():
            return []
        steps, eps = events.steps.numpy(), events.epsilon.numpy()
        loss, success, consec = events.mean_loss.numpy(), events.success.numpy(), events.consecutive.numpy()
        stopped: list[int] = []
        for t, slot in zip(*np.nonzero(ended), strict=True):
            member = int(self.slots[slot])
            record = self.records[member] if member >= 0 else None
            if record is None or record.stop_reason is not None:
                continue  # padding, or an agent the hook stopped earlier in this chunk
            config = self.members[member][0]
            record.steps.append(int(steps[t, slot]))
            record.epsilons.append(float(eps[t, slot]))
            record.losses.append(float(loss[t, slot]))
            record.successes.append(bool(success[t, slot]))
            stats = EpisodeStats(
                episode=len(record.steps),
                steps=record.steps[-1],
                epsilon=record.epsilons[-1],
                mean_loss=record.losses[-1],
                success=record.successes[-1],
                consecutive_successes=int(consec[t, slot]),
                total_steps=sum(record.steps),
            )
            if stats.consecutive_successes >= config.successes_to_solve:
                record.episodes_to_solve = stats.episode
                record.stop_reason = STOP_SOLVED
            elif stats.episode >= config.max_episodes:
                record.stop_reason = STOP_MAX_EPISODES
            if on_episode is not None and on_episode(member, stats) is False and record.stop_reason is None:
                record.stop_reason = STOP_HOOK
                stopped.append(int(slot))
            if record.stop_reason is not None:
                record.wall_time_s = elapsed
        return stopped

    def _compact(self, active: np.ndarray) -> None:
        """Gather the still-active agents into the next smaller power-of-two population."""
        keep = np.flatnonzero(active)
        self._harvest_weights(np.flatnonzero(~active))
        size = _bucket(len(keep))
        order = np.concatenate([keep, np.full(size - len(keep), keep[0])])
        index = tf.constant(order, tf.int32)
        self.state = tf.nest.map_structure(lambda x: tf.gather(x, index), self.state)
        self.hyper = tf.nest.map_structure(lambda x: tf.gather(x, index), self.hyper)
        self.state = self.state._replace(active=tf.constant(np.arange(size) < len(keep)))
        self.slots = np.concatenate([self.slots[keep], np.full(size - len(keep), -1)])

    def _harvest_weights(self, slots: np.ndarray) -> None:
        if len(slots) == 0:
            return
        arrays = [p.numpy() for p in self.state.params]
        for slot in slots:
            member = int(self.slots[slot])
            if member >= 0 and self.records[member].weights is None:
                self.records[member].weights = [a[slot].copy() for a in arrays]

    def _result(self, member: int) -> TrainResult:
        config, seed = self.members[member]
        record = self.records[member]
        steps = np.array(record.steps, dtype=np.int64)
        return TrainResult(
            config=config,
            seed=seed,
            episodes_to_solve=record.episodes_to_solve,
            steps=steps,
            epsilons=np.array(record.epsilons, dtype=np.float64),
            losses=np.array(record.losses, dtype=np.float64),
            successes=np.array(record.successes, dtype=bool),
            total_env_steps=int(steps.sum()),
            wall_time_s=record.wall_time_s,
            stop_reason=record.stop_reason or STOP_MAX_EPISODES,
            weights=record.weights or [],
        )


def _build_hyper(members: Sequence[tuple[TrainConfig, int]]) -> graph.Hyper:
    configs = [c for c, _ in members]

    def column(name: str, dtype: tf.DType) -> tf.Tensor:
        return tf.constant([getattr(c, name) for c in configs], dtype)

    return graph.Hyper(
        key=tf.constant([agent_key(seed) for _, seed in members], tf.uint32),
        gamma=column("gamma", tf.float32),
        learning_rate=column("learning_rate", tf.float32),
        epsilon_start=column("epsilon_start", tf.float32),
        epsilon_stop=column("epsilon_stop", tf.float32),
        epsilon_decay_rate=column("epsilon_decay_rate", tf.float32),
        batch_size=column("batch_size", tf.int32),
        warmup=column("warmup", tf.int32),
        memory_size=column("memory_size", tf.int32),
        target_refresh_episodes=column("target_refresh_episodes", tf.int32),
        max_episodes=column("max_episodes", tf.int32),
        success_threshold=column("success_threshold", tf.int32),
        successes_to_solve=column("successes_to_solve", tf.int32),
        env_reward=tf.constant([c.reward_mode == "env" for c in configs]),
        bootstrap_truncation=tf.constant([c.time_limit == "bootstrap" for c in configs]),
    )


def _initial_state(members: Sequence[tuple[TrainConfig, int]], slots: np.ndarray, obs_dim: int) -> graph.State:
    first = members[0][0]
    sizes = layer_sizes(obs_dim, first.hidden_sizes, first.env.n_actions)
    per_agent = [init_params(sizes, members[max(m, 0)][1]) for m in slots]
    params = [tf.constant(np.stack(layer)) for layer in zip(*per_agent, strict=True)]
    n = len(slots)
    capacity = max(c.memory_size for c, _ in members)
    zeros_i = tf.zeros([n], tf.int32)
    zeros_f = tf.zeros([n], tf.float32)
    return graph.State(
        params=params,
        target=list(params),
        adam=AdamState([tf.zeros_like(p) for p in params], [tf.zeros_like(p) for p in params], zeros_i),
        memory=replay.empty_replay(n, capacity, obs_dim),
        physics=tf.zeros([n, obs_dim], tf.float64),
        episode_step=zeros_i,
        total_step=zeros_i,
        episodes_done=zeros_i,
        consecutive=zeros_i,
        loss_sum=zeros_f,
        loss_count=zeros_i,
        active=tf.constant(slots >= 0),
    )
