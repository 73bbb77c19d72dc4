"""What training hands back: per-episode statistics for hooks and one result per finished agent."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dqn_core.agent import TrainedAgent
from dqn_core.config import TrainConfig

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
    wall_time_s: float  # from entering its slot until it finished
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
