"""Which gymnasium environments the trainer can run, resolved once per id.

Gymnasium stays the authority for env ids, time limits, spaces, rendering and greedy evaluation; the trainer
itself steps an in-graph port of the dynamics (`dqn_core.cartpole`), so only envs with such a port are accepted.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

from dqn_core.errors import ConfigError

IN_GRAPH_ENTRY_POINTS = ("gymnasium.envs.classic_control.cartpole:CartPoleEnv",)


@dataclass(frozen=True)
class EnvSpec:
    """What the trainer needs to know about an environment id."""

    env_id: str
    max_steps: int
    n_actions: int
    obs_dim: int


@functools.cache
def resolve_env(env_id: str) -> EnvSpec:
    """Look the id up in gymnasium's registry; raise ConfigError (one line) if it cannot be trained here."""
    import gymnasium as gym

    if not isinstance(env_id, str) or not env_id:
        raise ConfigError(f"env_id must be a gymnasium environment id, got {env_id!r}")
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
    finally:
        env.close()
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"env_id '{env_id}' has a {type(action_space).__name__} action space; DQN needs a Discrete one"
        )
    entry_point = spec.entry_point if isinstance(spec.entry_point, str) else ""
    if entry_point not in IN_GRAPH_ENTRY_POINTS:
        raise ConfigError(
            f"env_id '{env_id}' is not supported: the in-graph simulator covers CartPole only "
            "(e.g. CartPole-v0, CartPole-v1)"
        )
    if spec.max_episode_steps is None:
        raise ConfigError(f"env_id '{env_id}' has no time limit; register it with max_episode_steps")
    return EnvSpec(
        env_id=env_id,
        max_steps=int(spec.max_episode_steps),
        n_actions=int(action_space.n),
        obs_dim=int(observation_space.shape[0]),
    )


def make_env(env_id: str, **kwargs: object):
    """gymnasium.make without the "CartPole-v0 is out of date" notice: v0 is the book's env on purpose."""
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is out of date.*")
        return gym.make(env_id, **kwargs)
