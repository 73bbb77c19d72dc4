"""Acrobot and MountainCar train through the same compiled stream as CartPole: success is a return that reaches
the threshold, an agent's result does not depend on its neighbours, and the trained agent plays in gymnasium."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_core import TrainConfig, train, train_population
from dqn_core.trainer import STOP_SOLVED
from sweeps.study.space import load_sweep
from tests.dqn_core.same import assert_same_run

ACROBOT = load_sweep("sweeps/configs/acrobot.yaml").base
MOUNTAINCAR = load_sweep("sweeps/configs/mountaincar.yaml").base


@pytest.fixture(scope="module")
def acrobot_seed0():
    return train(ACROBOT, seed=0)


@pytest.mark.slow
def test_acrobot_base_config_solves_and_success_is_a_return(acrobot_seed0):
    r = acrobot_seed0
    assert r.solved and r.stop_reason == STOP_SOLVED and r.episodes_to_solve <= ACROBOT.max_episodes
    # Reward -1 per step and 0 on the goal step: a terminated episode of n steps returns -(n - 1), a cut one -500.
    returns = np.where(r.steps < 500, -(r.steps - 1), -500)
    np.testing.assert_array_equal(r.successes, returns >= -100)
    assert r.successes[-5:].all()


@pytest.mark.slow
def test_acrobot_alone_equals_inside_a_mixed_population(acrobot_seed0):
    others = [
        (ACROBOT.replace(gamma=0.95, batch_size=32, max_episodes=20), 5),
        (ACROBOT.replace(target_refresh_steps=0, hidden_sizes=(32,), max_episodes=15), 6),
    ]
    population = train_population([others[0], (ACROBOT, 0), others[1]])
    assert_same_run(acrobot_seed0, population[1])
    assert_same_run(population[2], train(others[1][0], seed=others[1][1]))


def test_mountaincar_success_is_a_return_and_runs_in_a_population(tmp_path):
    from sweeps.tracking.artifacts import write_episode_gif

    short = MOUNTAINCAR.replace(max_episodes=3)
    results = train_population([(short, 0), (short.replace(success_threshold=-200), 1)])
    assert write_episode_gif(tmp_path / "car.gif", results[0].agent(), seed=0) == 200  # rendered headless
    np.testing.assert_array_equal(results[0].successes, results[0].steps <= 110)  # -1 per step: return -steps
    assert results[1].successes.all() and results[1].episodes == 3  # every episode returns >= -200
    assert results[1].stop_reason != STOP_SOLVED  # 3 successes are not the 5 needed


def test_a_trained_acrobot_agent_plays_in_gymnasium(acrobot_seed0, tmp_path):
    from sweeps.tracking.artifacts import write_episode_gif

    agent = acrobot_seed0.agent()
    lengths = agent.evaluate(episodes=3, seed=100)
    assert lengths.shape == (3,) and (lengths < 500).all()  # the greedy agent reaches the goal in gymnasium too
    steps = write_episode_gif(tmp_path / "acrobot.gif", agent, seed=0)
    assert (tmp_path / "acrobot.gif").read_bytes()[:6] == b"GIF89a" and 1 <= steps <= 500


def test_config_defaults_follow_the_env():
    assert TrainConfig(env_id="Acrobot-v1").reward_mode == "env"
    assert ACROBOT.success_threshold == -100 and MOUNTAINCAR.success_threshold == -110
