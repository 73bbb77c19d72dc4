"""The per-agent settings a population trains with (`Hyper`), declared once.

Each field of `Hyper` is one [K] tensor the compiled graph reads; its annotation also names the field's host-side
dtype and where a slot's value comes from (a `Column`). The stream's NumPy columns (`DTYPES`, `row`) are derived
from that declaration, so adding a setting is one line here plus its use in the graph.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, get_type_hints

import numpy as np

from dqn_core.config import TrainConfig
from dqn_core.quiet_tf import tf
from dqn_core.rng import agent_key


class Source(NamedTuple):
    """What one slot's settings are read from: its work item's config and seed, and which of the padded network's
    layers are its own (`network.pad_params`)."""

    config: TrainConfig
    seed: int
    trainable: list[bool]


@dataclass(frozen=True)
class Column:
    """A setting's host-side dtype and how to read it from a `Source`; `read=None` reads the `TrainConfig` field
    of the same name."""

    dtype: type
    read: Callable[[Source], Any] | None = None


F32, I32, BOOL = Column(np.float32), Column(np.int32), Column(bool)


class Hyper(NamedTuple):
    """Per-agent [K] settings, constant during training.

    The one list of them: each field's `Annotated` metadata is its `Column`, so `DTYPES` and `row` follow this
    class, field for field and in this order, while `h.gamma` stays a plain `tf.Tensor` to readers and tools
    (a NamedTuple generated from a list of names would hide its fields from both).
    """

    key: Annotated[tf.Tensor, Column(np.uint32, lambda s: agent_key(s.seed))]
    gamma: Annotated[tf.Tensor, F32]
    learning_rate: Annotated[tf.Tensor, F32]
    epsilon_start: Annotated[tf.Tensor, F32]
    epsilon_stop: Annotated[tf.Tensor, F32]
    epsilon_decay_rate: Annotated[tf.Tensor, F32]
    batch_size: Annotated[tf.Tensor, I32]
    epsilon_decay_steps: Annotated[tf.Tensor, I32]
    warmup: Annotated[tf.Tensor, I32]
    memory_size: Annotated[tf.Tensor, I32]
    target_refresh_episodes: Annotated[tf.Tensor, I32]
    target_refresh_steps: Annotated[tf.Tensor, I32]  # 0: refresh by episodes
    updates_per_step: Annotated[tf.Tensor, I32]
    max_episodes: Annotated[tf.Tensor, I32]
    success_threshold: Annotated[tf.Tensor, I32]
    successes_to_solve: Annotated[tf.Tensor, I32]
    env_reward: Annotated[tf.Tensor, Column(bool, lambda s: s.config.reward_mode == "env")]
    bootstrap_truncation: Annotated[tf.Tensor, Column(bool, lambda s: s.config.time_limit == "bootstrap")]
    linear_epsilon: Annotated[tf.Tensor, Column(bool, lambda s: s.config.epsilon_schedule == "linear")]
    double_dqn: Annotated[tf.Tensor, BOOL]
    trainable: Annotated[tf.Tensor, Column(bool, lambda s: np.array(s.trainable, bool))]  # [K, layers]


def columns_of(settings: type[tuple]) -> dict[str, Column]:
    """Each field's `Column`, in field order, of a NamedTuple declared like `Hyper` (TypeError: a field without)."""
    hints = get_type_hints(settings, include_extras=True)
    found = {name: [m for m in getattr(hints[name], "__metadata__", ()) if isinstance(m, Column)] for name in hints}
    missing = [name for name, columns in found.items() if len(columns) != 1]
    if missing:
        raise TypeError(f"{settings.__name__} fields without exactly one Column: {missing}")
    return {name: found[name][0] for name in settings._fields}  # type: ignore[attr-defined]


COLUMNS = columns_of(Hyper)
"""Each `Hyper` field's `Column`, in field order."""
DTYPES = {name: column.dtype for name, column in COLUMNS.items()}
"""The NumPy dtype of each field's host-side column, in field order."""


def row(source: Source) -> dict[str, Any]:
    """One slot's settings, by field name in field order, as plain values (a column's dtype applies on writing)."""
    return {
        name: getattr(source.config, name) if column.read is None else column.read(source)
        for name, column in COLUMNS.items()
    }
