"""A trained agent outside the trainer: save, load, and greedy play in the real gymnasium environment.

Evaluation deliberately uses gymnasium (not the in-graph CartPole) so it doubles as a check on the port, and so
rendering (`render_mode="rgb_array"`) works without a display.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dqn_core.config import TrainConfig
from dqn_core.envs import make_env
from dqn_core.errors import ConfigError
from dqn_core.network import layer_sizes, q_values_numpy

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EpisodePlay:
    """One greedy episode: its length, gymnasium's return, and the frames if rendering was asked for."""

    steps: int
    env_return: float
    frames: list[np.ndarray] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class TrainedAgent:
    config: TrainConfig
    weights: list[np.ndarray] = field(repr=False)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions for a batch of observations [B, obs_dim]."""
        return np.argmax(q_values_numpy(self.weights, np.atleast_2d(obs)), axis=-1)

    def play(self, *, seed: int = 0, render: bool = False) -> EpisodePlay:
        """Run one greedy episode in gymnasium (time limit included), optionally collecting RGB frames."""
        if render:  # pygame renders off-screen; without these SDL looks for a display and a runtime dir
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
            os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
        env = make_env(self.config.env_id, render_mode="rgb_array" if render else None)
        try:
            obs, _ = env.reset(seed=seed)
            frames = [env.render()] if render else []
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(int(self.act(obs)[0]))
                total += float(reward)
                steps += 1
                done = terminated or truncated
                if render:
                    frames.append(env.render())
        finally:
            env.close()
        return EpisodePlay(steps=steps, env_return=total, frames=frames)

    def evaluate(self, *, episodes: int = 10, seed: int = 0) -> np.ndarray:
        """Greedy episode lengths over `episodes` resets seeded seed, seed+1, ..."""
        return np.array([self.play(seed=seed + i).steps for i in range(episodes)], dtype=np.int64)

    def save(self, path: str | Path) -> Path:
        """One .npz file holding the weights and the config (as JSON), loadable without TensorFlow."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"format": FORMAT_VERSION, "config": self.config.to_dict()})
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        with path.open("wb") as handle:
            np.savez(handle, meta=np.array(meta), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainedAgent:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                weights = [data[f"w{i}"] for i in range(len(data.files) - 1)]
        except FileNotFoundError:
            raise ConfigError(f"agent file not found: {path}") from None
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path} is not a saved dqn-sweep agent: {exc}") from None
        if meta.get("format") != FORMAT_VERSION:
            raise ConfigError(f"{path}: unsupported agent format {meta.get('format')!r}")
        config = TrainConfig.from_mapping(meta["config"], source=str(path))
        expected = layer_sizes(config.env.obs_dim, config.hidden_sizes, config.env.n_actions)
        shapes = [w.shape for w in weights[::2]]
        if shapes != list(itertools.pairwise(expected)):
            raise ConfigError(f"{path}: weight shapes {shapes} do not match its config's network")
        return cls(config=config, weights=weights)
