"""Train one agent or a fixed population of independent agents: both are a stream whose source is a list.

A single run is a population of one, and a population is a stream that is never refilled, so `train`,
`train_population` and `train_stream` share one code path and give bit-identical results for the same
(config, seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.lanes import MAX_LANES, plan_lanes
from dqn_core.results import STOP_HOOK, STOP_MAX_EPISODES, STOP_SOLVED, EpisodeStats, TrainResult
from dqn_core.stream import DEFAULT_TICKS_PER_CALL, StreamShape, Supply, WorkItem, train_stream

__all__ = [
    "DEFAULT_TICKS_PER_CALL",
    "STOP_HOOK",
    "STOP_MAX_EPISODES",
    "STOP_SOLVED",
    "EpisodeHook",
    "EpisodeStats",
    "TrainResult",
    "train",
    "train_population",
]

EpisodeHook = Callable[[int, EpisodeStats], "bool | None"]
"""on_episode(agent_index, stats); return False to stop that agent."""


def train(
    config: TrainConfig, *, seed: int = 0, on_episode: EpisodeHook | None = None, in_graph: bool = True
) -> TrainResult:
    """Train one agent: the same code path, and bit for bit the same result, as inside any population."""
    return train_population([(config, seed)], on_episode=on_episode, in_graph=in_graph)[0]


def train_population(
    members: Sequence[tuple[TrainConfig, int]],
    *,
    on_episode: EpisodeHook | None = None,
    ticks_per_call: int = DEFAULT_TICKS_PER_CALL,
    shape: StreamShape | Sequence[StreamShape] | None = None,
    in_graph: bool = True,
    slots: int | None = None,
) -> list[TrainResult]:
    """Train independent (config, seed) agents side by side; results come back in the order given.

    Members of different compute shapes (network, batch size, updates per step, Double DQN) train in lanes, one
    compiled population each (`dqn_core.lanes`). `shape` instead declares the compiled shape (or lanes) for all,
    possibly larger than the members need, so several populations of a sweep reuse compiled graphs. Results do not
    depend on either. `in_graph=False` steps an env
    that has an in-graph port on the host instead (`StreamShape.in_graph`; a given `shape` is taken as it is).
    `slots` trains at most that many at once, each freed slot refilled with the next member (what fits in memory:
    `dqn_core.memory.slots_that_fit`); results do not depend on it either, bit for bit.
    """
    if not members:
        raise ConfigError("a population needs at least one (config, seed) member")
    for _, seed in members:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed: must be a non-negative integer, got {seed!r}")
    pending = iter([WorkItem(config, seed, tag=index) for index, (config, seed) in enumerate(members)])
    results: list[TrainResult | None] = [None] * len(members)

    def source() -> WorkItem | Supply:
        return next(pending, Supply.DONE)

    def deliver(item: WorkItem, result: TrainResult) -> None:
        results[item.tag] = result

    hook = None if on_episode is None else (lambda item, stats: on_episode(item.tag, stats))
    slots = len(members) if slots is None else min(slots, len(members))
    configs = [config for config, _ in members]
    # One lane per compute shape among the members (none pays for another's network or minibatch), at most one
    # per slot.
    lanes = shape or plan_lanes(configs, cap=min(MAX_LANES, slots), in_graph=in_graph).shapes
    train_stream(source, shape=lanes, slots=slots, on_episode=hook, on_done=deliver, ticks_per_call=ticks_per_call)
    return [r for r in results if r is not None]
