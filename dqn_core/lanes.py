"""Which compiled populations ("lanes") a stream of mixed configurations trains in.

One compiled population makes every slot pay for the widest network, the largest minibatch, the most updates per
step and the Double DQN target of any config in it: a population of book agents mixed with 64-64/batch-64 agents
cost 3.7x the two trained apart. A stream with lanes compiles one population per group of configs that share those
compute-setting knobs, and each agent trains in the cheapest lane it fits. Results do not depend on the lane (a
config padded into a wider shape computes the same bits), so lanes change speed, never a value.

Each lane costs a compilation (seconds, once per size a lane takes) and its program's memory for the life of the
process, so their number is capped: past the cap, the two lanes whose merged shape adds the least estimated work
become one, until the cap holds; and shapes so close that a split costs more than it saves share a lane
(`OVERPAY_BELOW`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.shape import StreamShape

MAX_LANES = 4
"""The most lanes one stream compiles (docs/performance.md, Lanes: the compile time and memory per lane this was
chosen from)."""
OVERPAY_BELOW = 2.5
"""Two lanes also merge, whatever the cap, while no member of the merged lane would pay this many times its own
shape's estimated work or more: a split pays a compiled call per lane per host visit and populations half as full,
which cost more than the estimate saves when the shapes are close. Measured: the default sweep's batch sizes 16 and
32 (the batch-16 agents pay 2x in one lane) took 370.5 s as two lanes against 281.7 s as one; book agents and
64-64/batch-64 ones (the book agents pay ~15x in one covering shape) trained 3.5x faster in two lanes."""


def lane_key(config: TrainConfig) -> tuple:
    """The knobs that set what a slot computes per step; configs equal in them share a lane. The replay capacity is
    not one of them: it sets memory, not work per step (a lane's replay is its members' largest)."""
    return (config.hidden_sizes, config.batch_size, config.updates_per_step, config.double_dqn)


@dataclass(frozen=True)
class LanePlan:
    """The lanes, cheapest first, and a readable phrase per merge the cap forced (empty when none did)."""

    shapes: tuple[StreamShape, ...]
    merges: tuple[str, ...] = ()


def plan_lanes(
    configs: Sequence[TrainConfig],
    *,
    weights: Sequence[float] | None = None,
    cap: int = MAX_LANES,
    overpay_below: float = OVERPAY_BELOW,
    in_graph: bool = True,
) -> LanePlan:
    """One lane per distinct `lane_key` among `configs`, merged down to `cap` lanes, then further while the
    cheapest merge leaves every member paying less than `overpay_below` times its own shape's work
    (`OVERPAY_BELOW`).

    `weights` says how much work each config stands for (default: one each); a merge is charged the extra work
    its wider shape puts on both lanes' weights, so lanes that carry much work stay apart longest.
    """
    if not configs:
        raise ConfigError("lanes need at least one config to cover")
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigError(f"lanes: the cap must be an integer >= 1, got {cap!r}")
    env_ids = {c.env_id for c in configs}
    if len(env_ids) > 1:
        raise ConfigError(f"all agents in a stream must share env_id, got {sorted(env_ids)}")
    weights = [1.0] * len(configs) if weights is None else list(weights)
    groups: dict[tuple, list[TrainConfig]] = {}
    load: dict[tuple, float] = {}
    for config, weight in zip(configs, weights, strict=True):
        groups.setdefault(lane_key(config), []).append(config)
        load[lane_key(config)] = load.get(lane_key(config), 0.0) + weight
    # (shape, weight, the cheapest member's own estimated work per step)
    lanes = [
        (StreamShape.covering(group, in_graph=in_graph), load[key], min(_own_cost(c, in_graph) for c in group))
        for key, group in groups.items()
    ]
    merges = []
    while len(lanes) > 1:
        found = _cheapest_merge(lanes, None if len(lanes) > cap else overpay_below)
        if found is None:
            break
        (i, j), merged = found
        cheapest = min(lanes[i][2], lanes[j][2])
        merges.append(f"{describe(lanes[i][0])} + {describe(lanes[j][0])} -> {describe(merged)}")
        rest = [lane for k, lane in enumerate(lanes) if k not in (i, j)]
        lanes = [*rest, (merged, lanes[i][1] + lanes[j][1], cheapest)]
    shapes = sorted((shape for shape, *_ in lanes), key=lambda shape: (shape.step_cost(), describe(shape)))
    return LanePlan(tuple(shapes), tuple(merges))


def _own_cost(config: TrainConfig, in_graph: bool) -> float:
    return StreamShape.covering([config], in_graph=in_graph).step_cost()


def _cheapest_merge(
    lanes: list[tuple[StreamShape, float, float]], overpay_below: float | None
) -> tuple[tuple[int, int], StreamShape] | None:
    """The pair whose merged shape adds the least work (weighted) and the merged shape; with `overpay_below`, only
    among merges whose every member pays less than that many times its own work (None when there is none)."""
    best: tuple[float, tuple[int, int], StreamShape] | None = None
    for i in range(len(lanes)):
        for j in range(i + 1, len(lanes)):
            (a, wa, own_a), (b, wb, own_b) = lanes[i], lanes[j]
            merged = a.union(b)
            if overpay_below is not None and merged.step_cost() >= overpay_below * min(own_a, own_b):
                continue
            extra = merged.step_cost() * (wa + wb) - a.step_cost() * wa - b.step_cost() * wb
            if best is None or extra < best[0]:
                best = (extra, (i, j), merged)
    return None if best is None else (best[1], best[2])


def cheapest_fitting(shapes: Sequence[StreamShape], config: TrainConfig) -> int | None:
    """The index of the cheapest lane `config` fits, or None."""
    fitting = [k for k, shape in enumerate(shapes) if not shape.misfits(config)]
    return min(fitting, key=lambda k: (shapes[k].step_cost(), k)) if fitting else None


def describe(shape: StreamShape) -> str:
    """A lane in a few words: network, minibatch rows, updates per step, Double DQN."""
    hidden = "-".join(str(width) for width in shape.hidden_sizes)
    double = " double" if shape.double_dqn else ""
    return f"{hidden}/b{shape.batch_rows}/u{shape.max_updates}{double}"
