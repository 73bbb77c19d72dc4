"""Training behaviour: book config solves, determinism, alone == inside a population, hooks, save/load."""

import numpy as np
import pytest

from dqn_core import TrainConfig, TrainedAgent, train, train_population
from dqn_core.errors import ConfigError
from dqn_core.trainer import STOP_HOOK, STOP_MAX_EPISODES, STOP_SOLVED
from tests.dqn_core.same import assert_same_run

BOOK = TrainConfig()


@pytest.fixture(scope="module")
def book_seed0():
    return train(BOOK, seed=0)


def test_book_config_solves_within_budget(book_seed0):
    r = book_seed0
    assert r.solved and r.stop_reason == STOP_SOLVED
    assert 5 <= r.episodes_to_solve <= BOOK.max_episodes
    assert r.successes[-5:].all() and (r.steps[-5:] >= 190).all()
    assert r.total_env_steps == r.steps.sum()
    assert np.isnan(r.losses[0])  # no gradient step before replay holds a batch
    assert np.all(np.diff(r.epsilons) < 0)  # epsilon decays with total steps
    expected = 0.01 + 0.99 * np.exp(-0.001 * np.cumsum(r.steps))
    np.testing.assert_allclose(r.epsilons, expected, rtol=1e-5)


def test_same_seed_same_result(book_seed0):
    assert_same_run(book_seed0, train(BOOK, seed=0))


def test_different_seed_differs(book_seed0):
    other = train(BOOK, seed=1)
    assert other.steps[: len(book_seed0.steps)].tolist() != book_seed0.steps[: len(other.steps)].tolist()


def test_alone_equals_inside_a_mixed_population(book_seed0):
    others = [
        (BOOK.replace(gamma=0.95, batch_size=64), 11),
        (BOOK.replace(epsilon_decay_rate=0.01, warmup=0, memory_size=5000), 12),
        (BOOK.replace(learning_rate=3e-3, max_episodes=30), 13),
        (BOOK.replace(batch_size=16, target_refresh_episodes=3), 14),
        (BOOK.replace(time_limit="bootstrap"), 15),
    ]
    population = train_population([others[0], others[1], (BOOK, 0), *others[2:]])
    assert_same_run(book_seed0, population[2])
    assert_same_run(population[3], train(others[2][0], seed=others[2][1]))
    assert population[3].stop_reason in (STOP_SOLVED, STOP_MAX_EPISODES) and population[3].episodes <= 30


def test_hook_sees_every_episode_and_can_stop_an_agent():
    seen: dict[int, list[int]] = {0: [], 1: []}

    def hook(agent, stats):
        seen[agent].append(stats.episode)
        return not (agent == 1 and stats.episode == 4)

    short = BOOK.replace(max_episodes=12)
    results = train_population([(short, 0), (short, 1)], on_episode=hook)
    assert results[1].stop_reason == STOP_HOOK and results[1].episodes == 4
    assert seen[1] == [1, 2, 3, 4]
    assert seen[0] == list(range(1, results[0].episodes + 1))
    assert results[0].stop_reason in (STOP_SOLVED, STOP_MAX_EPISODES)
    np.testing.assert_array_equal(results[1].steps, train(short, seed=1).steps[:4])


def test_population_rejects_mixed_envs_and_bad_seeds():
    with pytest.raises(ConfigError, match="must share env_id"):
        train_population([(BOOK, 0), (BOOK.replace(env_id="CartPole-v1"), 1)])
    with pytest.raises(ConfigError, match="seed: must be a non-negative integer"):
        train_population([(BOOK, -1)])


def test_save_load_and_greedy_evaluation(book_seed0, tmp_path):
    agent = book_seed0.agent()
    path = agent.save(tmp_path / "agent.npz")
    loaded = TrainedAgent.load(path)
    assert loaded.config == BOOK
    for x, y in zip(loaded.weights, agent.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    lengths = loaded.evaluate(episodes=5, seed=100)
    assert lengths.shape == (5,) and lengths.mean() >= 150  # a solved agent balances in gymnasium too


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="is not a saved dqn-sweep agent"):
        TrainedAgent.load(bad)
    with pytest.raises(ConfigError, match="agent file not found"):
        TrainedAgent.load(tmp_path / "missing.npz")
