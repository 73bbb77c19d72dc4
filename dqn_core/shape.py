"""What a stream of agents is compiled for (`StreamShape`) and what it trains (`WorkItem`).

Kept apart from the trainer and free of TensorFlow, so a sweep can declare and check shapes while only parsing
its configuration (e.g. for `--help` or validation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dqn_core.config import TrainConfig
from dqn_core.envs import EnvSpec, resolve_env
from dqn_core.errors import ConfigError

SEED_LIMIT = 2**32
MIN_SLOTS = 2
"""XLA specialises an axis of size one (folds it away), which rounds some sums differently; a stream always has at
least two physical slots so a lone agent computes exactly as it would among others."""


def physical_slots(n: int) -> int:
    """Slot arrays are a power of two long: XLA vectorises the agent axis, and a length that leaves a remainder
    computes the remainder's `exp` (epsilon) on another code path, 1 ulp apart. Unused slots stay idle."""
    return max(MIN_SLOTS, 1 << math.ceil(math.log2(max(n, 1))))


def padded_hidden(hidden_sizes: Sequence[int], depth: int) -> tuple[int, ...]:
    """A network's hidden widths once it is deepened to `depth` layers by repeating its last width."""
    return (*hidden_sizes, *[hidden_sizes[-1]] * (depth - len(hidden_sizes)))


def covering_hidden(all_hidden: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The smallest hidden shape that every given network fits into (see `network.pad_params`)."""
    depth = max(len(h) for h in all_hidden)
    return tuple(max(widths) for widths in zip(*(padded_hidden(h, depth) for h in all_hidden), strict=True))


@dataclass(frozen=True)
class WorkItem:
    """One agent to train. `tag` is the caller's handle (a trial and seed, an index) and comes back with it."""

    config: TrainConfig
    seed: int
    tag: Any = None

    def describe(self) -> str:
        tag = f", tag {self.tag!r}" if self.tag is not None else ""
        return f"work item (seed {self.seed}{tag})"


def check_item(item: WorkItem) -> None:
    """Raise ConfigError naming the item if its config is not a TrainConfig or its seed is out of range."""
    if not isinstance(item.config, TrainConfig):
        raise ConfigError(f"{item.describe()}: config: must be a TrainConfig, got {type(item.config).__name__}")
    seed = item.seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"{item.describe()}: seed: must be an integer in [0, 2**32), got {seed!r}")


@dataclass(frozen=True, kw_only=True)
class StreamShape:
    """The compiled capacity of a stream: every work item must fit into it (`check`)."""

    env_id: str = "CartPole-v0"
    hidden_sizes: tuple[int, ...] = (16, 16, 16)
    """Widest unit count per hidden layer; shallower or narrower networks are padded exactly (`pad_params`)."""
    batch_rows: int = 32
    """The largest batch size; smaller minibatches are padded with masked rows."""
    memory_size: int = 10_000
    """The largest replay capacity."""
    max_updates: int = 1
    """The largest updates_per_step."""
    double_dqn: bool = False
    """Compile the Double DQN target in (agents without it still get the plain target, bit for bit)."""
    in_graph: bool = True
    """Step the env inside the compiled graph where it has a port (CartPole, Acrobot, MountainCar); False steps it
    on the host through gymnasium's vector API (`dqn_core.host`), to compare or time the two paths. Envs without
    a port are always host-stepped."""

    @classmethod
    def covering(cls, configs: Sequence[TrainConfig], *, in_graph: bool = True) -> StreamShape:
        """The smallest shape that fits every given config (e.g. the corners of a search space)."""
        if not configs:
            raise ConfigError("a stream shape needs at least one config to cover")
        env_ids = {c.env_id for c in configs}
        if len(env_ids) > 1:
            raise ConfigError(f"all agents in a stream must share env_id, got {sorted(env_ids)}")
        return cls(
            env_id=configs[0].env_id,
            hidden_sizes=covering_hidden([c.hidden_sizes for c in configs]),
            batch_rows=max(c.batch_size for c in configs),
            memory_size=max(c.memory_size for c in configs),
            max_updates=max(c.updates_per_step for c in configs),
            double_dqn=any(c.double_dqn for c in configs),
            in_graph=in_graph,
        )

    def check(self, item: WorkItem) -> None:
        """Raise ConfigError naming the item if it does not fit this shape."""
        check_item(item)
        problems = self.misfits(item.config)
        if problems:
            raise ConfigError(f"{item.describe()} does not fit the stream: {'; '.join(problems)}")

    def misfits(self, c: TrainConfig) -> list[str]:
        """Why a config does not fit this shape, one phrase per reason; empty when it fits."""
        problems = []
        if c.env_id != self.env_id:
            problems.append(f"env_id {c.env_id!r} is not the stream's {self.env_id!r}")
        if covering_hidden([c.hidden_sizes, self.hidden_sizes]) != self.hidden_sizes:
            problems.append(f"hidden_sizes {list(c.hidden_sizes)} do not fit into {list(self.hidden_sizes)}")
        for name, limit in (("batch_size", self.batch_rows), ("memory_size", self.memory_size)):
            if getattr(c, name) > limit:
                problems.append(f"{name} {getattr(c, name)} exceeds the declared maximum {limit}")
        if c.updates_per_step > self.max_updates:
            problems.append(f"updates_per_step {c.updates_per_step} exceeds the declared maximum {self.max_updates}")
        if c.double_dqn and not self.double_dqn:
            problems.append("double_dqn is on but the stream was declared without it")
        return problems

    def union(self, other: StreamShape) -> StreamShape:
        """The smallest shape that both fit into (two lanes merged into one)."""
        return StreamShape(
            env_id=self.env_id,
            hidden_sizes=covering_hidden([self.hidden_sizes, other.hidden_sizes]),
            batch_rows=max(self.batch_rows, other.batch_rows),
            memory_size=max(self.memory_size, other.memory_size),
            max_updates=max(self.max_updates, other.max_updates),
            double_dqn=self.double_dqn or other.double_dqn,
            in_graph=self.in_graph,
        )

    def step_cost(self) -> float:
        """An estimate of one agent-step's cost in this shape, in multiply-adds, to rank lanes (not a time).

        Acting is one forward pass of one row; each of the `max_updates` gradient steps is a forward and backward
        pass (~3 forwards) of `batch_rows` rows plus the target's forward pass (two with Double DQN). Every slot of
        a compiled population pays this, whatever its own config asks for: that is why lanes exist."""
        sizes = self.sizes()
        forward = sum(a * b for a, b in itertools.pairwise(sizes))
        per_update = self.batch_rows * forward * (3 + (2 if self.double_dqn else 1))
        return forward + self.max_updates * per_update

    @property
    def env(self) -> EnvSpec:
        return resolve_env(self.env_id)

    def sizes(self) -> list[int]:
        """Layer widths of the compiled network: observation, hidden layers, actions."""
        return [self.env.obs_dim, *self.hidden_sizes, self.env.n_actions]
