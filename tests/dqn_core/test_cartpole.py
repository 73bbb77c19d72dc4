"""The in-graph CartPole agrees with gymnasium's step for step on random action sequences."""

import numpy as np

from dqn_core.cartpole import cartpole_step
from dqn_core.envs import make_env
from dqn_core.quiet_tf import tf


def test_matches_gymnasium_on_random_actions():
    rng = np.random.default_rng(0)
    env = make_env("CartPole-v0").unwrapped
    for episode in range(20):
        env.reset(seed=episode)
        state = tf.constant(env.state[None, :], tf.float64)
        for _ in range(200):
            action = int(rng.integers(2))
            obs, _, terminated, _, _ = env.step(action)
            state, ours_terminated = cartpole_step(state, tf.constant([action]))
            np.testing.assert_allclose(state.numpy()[0], env.state, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(state.numpy()[0].astype(np.float32), obs)
            assert bool(ours_terminated.numpy()[0]) == terminated
            if terminated:
                break
    env.close()


def test_batched_rows_are_independent():
    states = tf.constant([[0.0, 0.0, 0.05, 0.0], [0.1, -0.2, -0.03, 0.4], [2.39, 1.0, 0.0, 0.0]], tf.float64)
    together, term = cartpole_step(states, tf.constant([1, 0, 1]))
    for i in range(3):
        alone, alone_term = cartpole_step(states[i : i + 1], tf.constant([[1, 0, 1][i]]))
        np.testing.assert_array_equal(together.numpy()[i], alone.numpy()[0])
        assert term.numpy()[i] == alone_term.numpy()[0]
    assert term.numpy().tolist() == [False, False, True]  # the third cart leaves the track
