"""Host-stepped envs: any gymnasium env with Discrete actions and a flat Box observation trains through gymnasium's
vector API with the same streaming slots, results and bit-for-bit independence as the in-graph ports."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dqn_core import TrainConfig, rng, tail, train, train_population
from dqn_core.envs import resolve_env
from dqn_core.quiet_tf import tf
from dqn_core.shape import StreamShape, WorkItem
from dqn_core.stream import Supply, train_stream
from dqn_core.trainer import STOP_HOOK, STOP_SOLVED

CORRIDOR = "TestCorridor-v0"
LENGTH = 8


class Corridor(gym.Env):
    """Walk right along a corridor: +10 on reaching its end (terminated), -0.1 per other step. The start cell
    and a small observation jitter come from the env's seeded RNG, so episodes depend on the reset seed."""

    action_space = gym.spaces.Discrete(3)  # left, stay, right
    observation_space = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.pos = 0

    def _obs(self) -> np.ndarray:
        jitter = self.np_random.uniform(-0.01, 0.01)
        return np.array([self.pos / LENGTH, 1.0 - self.pos / LENGTH, jitter], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = int(self.np_random.integers(0, 3))
        return self._obs(), {}

    def step(self, action):
        self.pos = min(max(self.pos + int(action) - 1, 0), LENGTH)
        terminated = self.pos == LENGTH
        return self._obs(), 10.0 if terminated else -0.1, terminated, False, {}


class ShortCorridor(Corridor):
    """Cuts its own episodes after 5 steps (truncated, not through gymnasium's TimeLimit)."""

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, _, info = super().step(action)
        return obs, reward, terminated, not terminated and self.steps >= 5, info


def _register() -> None:
    if CORRIDOR not in gym.registry:
        gym.register(CORRIDOR, entry_point=Corridor, max_episode_steps=40, reward_threshold=8.5)
        gym.register("TestShortCorridor-v0", entry_point=ShortCorridor, max_episode_steps=40, reward_threshold=8.5)


_register()
BASE = TrainConfig(
    env_id=CORRIDOR,
    hidden_sizes=(16, 16),
    batch_size=16,
    memory_size=2000,
    warmup=0,
    max_episodes=60,
    epsilon_decay_rate=0.01,
)


def _return(steps: int) -> np.float32:
    """An episode's return as the graph sums it (float32); an episode shorter than 40 steps reached the end."""
    total = np.float32(0)
    for t in range(steps):
        total = np.float32(total + np.float32(10.0 if t == steps - 1 and steps < 40 else -0.1))
    return total


def _same(a, b):
    assert a.episodes_to_solve == b.episodes_to_solve
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.epsilons, b.epsilons)
    np.testing.assert_array_equal(a.successes, b.successes)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def corridor_seed0():
    return train(BASE, seed=0)


def test_a_flat_discrete_env_without_a_port_is_host_stepped():
    spec = resolve_env(CORRIDOR)
    assert (spec.simulator, spec.max_steps, spec.n_actions, spec.obs_dim) == ("host", 40, 3, 3)
    assert BASE.reward_mode == "env" and BASE.success_threshold == 9  # ceil of the registered 8.5


def test_a_registered_custom_env_trains_end_to_end(corridor_seed0):
    r = corridor_seed0
    assert r.solved and r.stop_reason == STOP_SOLVED and r.episodes_to_solve <= BASE.max_episodes
    np.testing.assert_array_equal(r.successes, [_return(n) >= 9 for n in r.steps])
    assert r.successes[-5:].all() and (r.steps[-5:] <= 11).all()
    assert np.isfinite(r.losses).all()  # warmup 0, batch 16: updates start within the first episode
    assert r.total_env_steps == r.steps.sum() and len(r.steps) == r.episodes_to_solve
    agent = r.agent()
    assert (agent.evaluate(episodes=3, seed=7) <= LENGTH).all()  # the greedy agent walks the corridor in gymnasium


def test_same_seed_same_result_and_seeds_differ(corridor_seed0):
    _same(corridor_seed0, train(BASE, seed=0))
    other = train(BASE.replace(max_episodes=5), seed=1)
    assert not np.array_equal(other.steps, corridor_seed0.steps[:5])


def test_alone_equals_inside_a_mixed_population(corridor_seed0):
    others = [
        (BASE.replace(gamma=0.9, batch_size=8, max_episodes=7), 5),
        (BASE.replace(hidden_sizes=(32,), memory_size=500, learning_rate=3e-3, max_episodes=12), 6),
        (BASE.replace(target_refresh_steps=25, time_limit="bootstrap", max_episodes=4), 7),
    ]
    population = train_population([others[0], (BASE, 0), others[1], others[2]])
    _same(corridor_seed0, population[1])
    _same(population[2], train(others[1][0], seed=others[1][1]))


def test_refilled_slots_and_the_compacted_tail_equal_lone_runs(corridor_seed0, monkeypatch):
    """Four slots, five items: agents enter slots others left, and the tail shrinks (the envs move along with
    their agents, mid-episode); each agent equals its lone run. Compiling is made free, so the tail shrinks as soon
    as it can (`dqn_core.tail`)."""
    from dqn_core.host import HostEnvs

    monkeypatch.setattr(tail.TailRental, "shrink_now", lambda self, slots, target: True)
    moves = []
    reorder = HostEnvs.reorder
    monkeypatch.setattr(HostEnvs, "reorder", lambda self, order, size: (moves.append(size), reorder(self, order, size)))
    items = [
        WorkItem(BASE.replace(max_episodes=3), 11, tag=0),
        WorkItem(BASE.replace(gamma=0.95, max_episodes=9), 12, tag=1),
        WorkItem(BASE, 0, tag=2),
        WorkItem(BASE.replace(batch_size=8, max_episodes=2), 13, tag=3),
        WorkItem(BASE.replace(warmup=3, max_episodes=6), 14, tag=4),
    ]
    pending = iter(items)
    results = {}
    count = train_stream(
        lambda: next(pending, Supply.DONE),
        shape=StreamShape.covering([i.config for i in items]),
        slots=4,
        on_done=lambda item, result: results.__setitem__(item.tag, result),
        ticks_per_call=16,
    )
    assert count == 5 and sorted(results) == [0, 1, 2, 3, 4] and moves == [2]
    _same(results[2], corridor_seed0)
    for item in items[:2] + items[3:]:
        _same(results[item.tag], train(item.config, seed=item.seed))


def test_hook_stops_a_host_stepped_agent():
    seen = []

    def hook(index, stats):
        seen.append((index, stats.episode))
        return stats.episode < 2

    results = train_population([(BASE, 3), (BASE.replace(max_episodes=4), 4)], on_episode=hook)
    assert results[0].episodes == 2 and results[0].stop_reason == STOP_HOOK
    assert results[1].episodes <= 4 and (0, 2) in seen and (1, 1) in seen


@pytest.mark.slow
def test_cartpole_host_stepped_matches_in_graph_until_the_physics_rounding_differs():
    """The same agent on both paths: the host path starts CartPole's episodes from the port's reset draw, so the
    runs agree bit for bit until they part, presumably where gymnasium's NumPy float64 step and the XLA-compiled
    port (equal within 1e-13 per step, not bit for bit) round an observation to float32 differently (not traced).
    Measured on the 2-core CI machine with the book config, seed 0: episode lengths, epsilons and losses equal for
    the first 40 episodes (lengths through 46); in-graph solves in 57 episodes, host-stepped in 64."""
    book = TrainConfig(max_episodes=40)
    in_graph = train(book, seed=0)
    host = train(book, seed=0, in_graph=False)
    assert len(in_graph.steps) == len(host.steps) == 40
    np.testing.assert_array_equal(in_graph.steps, host.steps)
    np.testing.assert_array_equal(in_graph.epsilons, host.epsilons)
    np.testing.assert_array_equal(in_graph.losses, host.losses)


def test_envs_move_with_their_agents_when_the_tail_shrinks():
    """Compaction keeps a mid-episode env and its last observation; a masked reset of the fresh slot works."""
    from dqn_core.host import HostEnvs

    envs = HostEnvs(resolve_env(CORRIDOR), 4)
    obs, _ = envs.vec.reset(seed=[1, 2, 3, 4])
    obs, *_ = envs.vec.step(np.array([2, 2, 2, 2]))
    envs.obs[:], envs.pending[:] = obs, False
    position, last = envs.vec.envs[2].unwrapped.pos, obs[2].copy()
    envs.reorder([2], 2)
    assert envs.vec.envs[0].unwrapped.pos == position and envs.pending.tolist() == [False, True]
    obs, _ = envs.vec.reset(seed=[None, 5], options={"reset_mask": envs.pending.copy()})  # the fresh env only
    np.testing.assert_array_equal(obs[0], last)
    envs.close()


def test_an_env_that_truncates_itself_ends_the_episode_there():
    r = train(BASE.replace(env_id="TestShortCorridor-v0", max_episodes=6), seed=2)
    assert r.episodes == 6 and (r.steps <= 5).all() and (r.steps == 5).any()


def test_reset_seeds_are_the_reset_stream_hash_of_key_and_episode_computed_in_one_call():
    keys = np.array([rng.agent_key(seed) for seed in (0, 1, 2, 3, 4)], np.uint32)
    episodes = np.array([0, 1, 7, 100, 2**20], np.int32)
    eager = rng.bits(tf.constant(keys), tf.constant(episodes), rng.STREAM_RESET, 1)[:, 0].numpy()
    seeds = rng.reset_seeds(keys, episodes)
    assert np.array_equal(seeds, eager)
    assert len(set(seeds.tolist())) == 5
    assert np.array_equal(rng.reset_seeds(keys[:2], episodes[:2]), eager[:2])  # another population size
