"""Which gymnasium environments the trainer can run, resolved once per id.

Gymnasium stays the authority for env ids, time limits, spaces, reward thresholds, rendering and greedy
evaluation; the trainer itself steps an in-graph port of the dynamics where there is one (`dqn_core.cartpole`,
`acrobot`, `mountaincar`) and any other env with a Discrete action space and a flat Box observation on the host
(`dqn_core.host`).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

from dqn_core.errors import ConfigError

IN_GRAPH_SIMULATORS = {  # gymnasium entry point -> the dqn_core module that ports its dynamics
    "gymnasium.envs.classic_control.cartpole:CartPoleEnv": "cartpole",
    "gymnasium.envs.classic_control.acrobot:AcrobotEnv": "acrobot",
    "gymnasium.envs.classic_control.mountain_car:MountainCarEnv": "mountaincar",
}
HOST_SIMULATOR = "host"
"""Any other env with a Discrete action space and a flat Box observation: stepped on the host (`dqn_core.host`)."""
BOOK_ENV = "CartPole-v0"
BOOK_SUCCESS_STEPS = 190  # the book's success: an episode of >= 190 of CartPole-v0's 200 steps


@dataclass(frozen=True)
class EnvSpec:
    """What the trainer needs to know about an environment id."""

    env_id: str
    max_steps: int
    n_actions: int
    obs_dim: int
    simulator: str = "cartpole"  # the in-graph port's module name in dqn_core, or "host" (no port)
    reward_threshold: float | None = None  # gymnasium's "solved" return, if the env declares one
    renders: bool = True  # the env can draw rgb_array frames (the GIFs of greedy episodes)

    @property
    def return_is_length(self) -> bool:
        """CartPole pays 1 per step, so a return is an episode length: its success threshold can be drawn on a
        chart of episode lengths."""
        return self.simulator == "cartpole"

    @property
    def default_success_threshold(self) -> int | None:
        """The return an episode needs to count as a success when the config names none: the book's 190 steps
        on CartPole-v0, else the env's reward threshold (rounded up: returns of these envs are whole numbers)."""
        if self.env_id == BOOK_ENV:
            return BOOK_SUCCESS_STEPS
        return None if self.reward_threshold is None else math.ceil(self.reward_threshold)


@functools.cache
def resolve_env(env_id: str) -> EnvSpec:
    """Look the id up in gymnasium's registry; raise ConfigError (one line) if it cannot be trained here."""
    import gymnasium as gym

    if not isinstance(env_id, str) or not env_id:
        raise ConfigError(f"env_id: must be a gymnasium environment id, got {env_id!r}")
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"unknown env_id '{env_id}': {exc}") from None
    try:
        env = make_env(env_id)
    except Exception as exc:  # a registered env whose dependencies are missing, say
        raise ConfigError(f"env_id '{env_id}' cannot be created: {exc}") from None
    try:
        action_space, observation_space = env.action_space, env.observation_space
        renders = "rgb_array" in (env.metadata.get("render_modes") or [])
    finally:
        env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"env_id '{env_id}' has a {type(action_space).__name__} action space; DQN needs a Discrete one"
        )
    if not isinstance(observation_space, gym.spaces.Box):
        raise ConfigError(
            f"env_id '{env_id}' has a {type(observation_space).__name__} observation space; the Q-network needs a "
            "flat Box of numbers"
        )
    if len(observation_space.shape) != 1:
        raise ConfigError(
            f"env_id '{env_id}' observes arrays of shape {observation_space.shape} (images?); the Q-network is an "
            "MLP and needs a flat vector"
        )
    entry_point = spec.entry_point if isinstance(spec.entry_point, str) else ""
    if spec.max_episode_steps is None:
        raise ConfigError(f"env_id '{env_id}' has no time limit; register it with max_episode_steps")
    return EnvSpec(
        env_id=env_id,
        max_steps=int(spec.max_episode_steps),
        n_actions=int(action_space.n),
        obs_dim=int(observation_space.shape[0]),
        simulator=IN_GRAPH_SIMULATORS.get(entry_point, HOST_SIMULATOR),
        reward_threshold=spec.reward_threshold,
        renders=renders,
    )


def make_env(env_id: str, **kwargs: object):
    """gymnasium.make without the "CartPole-v0 is out of date" notice: v0 is the book's env on purpose."""
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        return gym.make(env_id, **kwargs)
