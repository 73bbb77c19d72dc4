"""The in-graph env ports (CartPole, Acrobot, MountainCar) agree with gymnasium itself, step for step.

Each port is played against gymnasium's own env on several seeds at once (one batch row per seed, each row with its
own gymnasium env): start states from the same uniform draws gymnasium's reset makes, actions mixing a goal-seeking
heuristic with random ones, so that episodes end both by termination and by the time limit (then both reset).

How exact: eagerly, CartPole and MountainCar reproduce gymnasium bit for bit, so they are played free-running (our
own state carried forward). Acrobot's one-step map agrees only to the last bits: gymnasium squares with numpy's
scalar `x**2`, which is libm's `pow(x, 2.0)` and not correctly rounded in about 1 case in 1,000, while TensorFlow
squares exactly; the double pendulum amplifies such differences along an episode, so Acrobot is compared one step
at a time from gymnasium's state. Compiled, the trainer's way, CartPole and Acrobot differ in the last bits too (XLA
fuses multiply-adds), so all three are compared the same one-step way there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest
from gymnasium.envs.classic_control import acrobot as gym_acrobot

from dqn_core import acrobot, cartpole, mountaincar
from dqn_core.envs import make_env
from dqn_core.quiet_tf import tf


@dataclass(frozen=True)
class Port:
    module: ModuleType
    heuristic: Callable[[np.ndarray], int]  # the action that balances / pumps energy, from gymnasium's state


PORTS = {
    # Push toward the side the pole is falling to: mostly reaches the 200-step limit.
    "CartPole-v0": Port(cartpole, lambda s: int(s[2] + s[3] > 0)),
    # Torque along the actuated joint's velocity does work on the pendulum: reaches the goal in ~100 steps.
    "Acrobot-v1": Port(acrobot, lambda s: 2 if s[3] > 0 else 0),
    # Push along the velocity: swings up to the flag in ~100 steps, touching the left wall on the way at times.
    "MountainCar-v0": Port(mountaincar, lambda s: 2 if s[1] >= 0 else 0),
}
SEEDS = (0, 1, 2, 3)
STEPS = 1000  # per seed
EPSILONS = (0.1, 0.3, 1.0)  # chance of a random action, per episode in turn
ONE_STEP_ATOL = 1e-13  # steps from gymnasium's state: observed up to 1.8e-15 (Acrobot under XLA)


@dataclass
class Tally:
    steps: int = 0
    terminations: int = 0
    truncations: int = 0
    max_dev: float = 0.0
    left_wall: int = 0  # MountainCar steps ending at the left wall
    wraps: int = 0  # Acrobot steps where an angle was wrapped


def _draws(seed: int, dim: int) -> np.ndarray:
    """The uniform draws gymnasium's `reset(seed=seed)` makes (its np_random is PCG64 seeded the same way)."""
    return np.random.Generator(np.random.PCG64(seed)).random(dim)


def _gym_state(env) -> np.ndarray:
    return np.asarray(env.unwrapped.state, np.float64)


def _assert_obs_equal(ours: np.ndarray, theirs: np.ndarray, exact: bool) -> None:
    """Observations agree after the float32 cast: exactly, or within one float32 ulp when the states may differ."""
    ours32 = ours.astype(np.float32)
    if exact:
        np.testing.assert_array_equal(ours32, theirs)
    else:
        assert np.all(np.abs(ours32 - theirs) <= np.spacing(np.abs(theirs))), (ours32, theirs)


def _step_and_observe(module: ModuleType):
    def run(state, action):
        next_state, reward, terminated = module.step(state, action)
        return next_state, reward, terminated, module.observe(next_state)

    return run


def _play(env_id: str, step_fn, *, resync: bool, atol: float) -> Tally:
    """Step every seed's env and the port side by side for STEPS steps; assert agreement at each step."""
    module = PORTS[env_id].module
    heuristic = PORTS[env_id].heuristic
    envs = [make_env(env_id) for _ in SEEDS]
    max_steps = envs[0].spec.max_episode_steps
    rngs = [np.random.default_rng(seed) for seed in SEEDS]
    episode = [0] * len(SEEDS)
    elapsed = [0] * len(SEEDS)
    state = np.zeros((len(SEEDS), module.STATE_DIM))
    tally = Tally()

    def reset(i: int) -> None:
        reset_seed = 1000 * SEEDS[i] + episode[i]
        obs, _ = envs[i].reset(seed=reset_seed)
        start = module.reset_state(tf.constant(_draws(reset_seed, module.STATE_DIM)[None], tf.float64))
        if module is cartpole:  # its reset mapping is within an ulp of numpy's (see cartpole.reset_state)
            np.testing.assert_allclose(start.numpy()[0], _gym_state(envs[i]), rtol=0, atol=1e-17)
            start = tf.constant(_gym_state(envs[i])[None], tf.float64)
        np.testing.assert_array_equal(start.numpy()[0], _gym_state(envs[i]))
        np.testing.assert_array_equal(module.observe(start).numpy()[0].astype(np.float32), obs)
        state[i] = start.numpy()[0]
        elapsed[i] = 0

    for i in range(len(SEEDS)):
        reset(i)
    for _ in range(STEPS):
        actions = []
        for i, rng in enumerate(rngs):
            epsilon = EPSILONS[episode[i] % len(EPSILONS)]
            random = rng.random() < epsilon
            actions.append(int(rng.integers(envs[i].action_space.n)) if random else heuristic(state[i]))
        outputs = step_fn(tf.constant(state, tf.float64), tf.constant(actions, tf.int32))
        next_state, reward, terminated, observation = (t.numpy() for t in outputs)
        for i, env in enumerate(envs):
            obs, gym_reward, gym_terminated, truncated, _ = env.step(actions[i])
            theirs = _gym_state(env)
            dev = float(np.max(np.abs(next_state[i] - theirs)))
            assert dev <= atol, (env_id, SEEDS[i], episode[i], elapsed[i], next_state[i], theirs)
            tally.max_dev = max(tally.max_dev, dev)
            assert reward[i] == gym_reward and bool(terminated[i]) == gym_terminated
            _assert_obs_equal(observation[i], obs, exact=atol == 0)
            tally.steps += 1
            tally.left_wall += env_id == "MountainCar-v0" and bool(theirs[0] == mountaincar.MIN_POSITION)
            tally.wraps += env_id == "Acrobot-v1" and bool(np.any(np.abs(theirs[:2] - state[i, :2]) > math.pi))
            elapsed[i] += 1
            assert truncated == (elapsed[i] >= max_steps)  # gymnasium's TimeLimit; the ports leave it to the trainer
            if gym_terminated or truncated:
                tally.terminations += gym_terminated
                tally.truncations += not gym_terminated
                episode[i] += 1
                reset(i)
            else:
                state[i] = theirs if resync else next_state[i]
    for env in envs:
        env.close()
    return tally


def _assert_covered(env_id: str, tally: Tally) -> None:
    assert tally.steps == STEPS * len(SEEDS)
    assert tally.terminations > 0 and tally.truncations > 0, tally
    if env_id == "MountainCar-v0":
        assert tally.left_wall > 0, tally
    if env_id == "Acrobot-v1":
        assert tally.wraps > 0, tally


@pytest.mark.parametrize("env_id", list(PORTS))
def test_matches_gymnasium_step_for_step(env_id):
    """Eager TF: bit for bit and free-running for CartPole and MountainCar, one step at a time for Acrobot."""
    acrobot_case = env_id == "Acrobot-v1"
    step_fn = _step_and_observe(PORTS[env_id].module)
    tally = _play(env_id, step_fn, resync=acrobot_case, atol=ONE_STEP_ATOL if acrobot_case else 0.0)
    _assert_covered(env_id, tally)


@pytest.mark.parametrize("env_id", list(PORTS))
def test_compiled_step_matches_gymnasium(env_id):
    """Under XLA, as the trainer runs it: each step from gymnasium's state agrees within 1e-13."""
    step_fn = tf.function(_step_and_observe(PORTS[env_id].module), jit_compile=True)
    tally = _play(env_id, step_fn, resync=True, atol=ONE_STEP_ATOL)
    _assert_covered(env_id, tally)


@pytest.mark.parametrize("env_id", list(PORTS))
def test_interface(env_id):
    module = PORTS[env_id].module
    env = make_env(env_id)
    env.reset(seed=0)
    assert len(env.unwrapped.state) == module.STATE_DIM
    assert env.observation_space.shape[0] == module.OBS_DIM
    env.close()
    start = module.reset_state(tf.fill([3, module.STATE_DIM], tf.constant(0.5, tf.float64)))
    next_state, reward, terminated = module.step(start, tf.constant([0, 1, 0], tf.int32))
    observation = module.observe(next_state)
    assert (start.dtype, next_state.dtype, reward.dtype) == (tf.float64,) * 3 and terminated.dtype == tf.bool
    assert (next_state.shape, reward.shape, terminated.shape) == ((3, module.STATE_DIM), (3,), (3,))
    assert observation.dtype == tf.float64 and observation.shape == (3, module.OBS_DIM)


@pytest.mark.parametrize("env_id", list(PORTS))
def test_reset_state_is_gymnasiums_reset(env_id):
    module = PORTS[env_id].module
    env = make_env(env_id)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        ours = module.reset_state(tf.constant(_draws(seed, module.STATE_DIM)[None], tf.float64))
        if module is cartpole:  # (2u - 1) * 0.05, kept from earlier versions: within an ulp of numpy's mapping
            np.testing.assert_allclose(ours.numpy()[0], _gym_state(env), rtol=0, atol=1e-17)
            continue
        np.testing.assert_array_equal(ours.numpy()[0], _gym_state(env))
        np.testing.assert_array_equal(module.observe(ours).numpy()[0].astype(np.float32), obs)
    env.close()


BELOW_ONE = np.nextafter(1.0, 0.0)


def test_reset_state_maps_draws_to_the_bounds():
    draws = tf.constant([[0.0] * 4, [BELOW_ONE] * 4], tf.float64)
    lo, hi = cartpole.reset_state(draws).numpy()
    np.testing.assert_array_equal(lo, [-0.05] * 4)
    np.testing.assert_allclose(hi, [0.05] * 4, rtol=0, atol=1e-16)
    assert np.all(hi <= 0.05)

    lo, hi = acrobot.reset_state(draws).numpy()  # gymnasium stores the start state as float32
    np.testing.assert_array_equal(lo, [float(np.float32(-0.1))] * 4)
    np.testing.assert_array_equal(hi, [float(np.float32(0.1))] * 4)

    lo, hi = mountaincar.reset_state(draws[:, :2]).numpy()
    np.testing.assert_array_equal(lo, [-0.6, 0.0])
    np.testing.assert_allclose(hi, [-0.4, 0.0], rtol=0, atol=1e-16)
    assert hi[0] <= -0.4 and hi[1] == 0.0


BATCHES = {
    # Upright, moving, about to leave the track (terminates).
    "CartPole-v0": ([[0.0, 0.0, 0.05, 0.0], [0.1, -0.2, -0.03, 0.4], [2.39, 1.0, 0.0, 0.0]], [1, 0, 1]),
    # Hanging still; whirling so fast that both angles wrap twice in one step (both signs), or once; above the bar.
    "Acrobot-v1": (
        [
            [0.0, 0.0, 0.0, 0.0],
            [3.0, 3.0, 4 * math.pi, 9 * math.pi],
            [-3.0, -3.0, -4 * math.pi, -9 * math.pi],
            [3.0, 0.0, 4 * math.pi, 9 * math.pi],
            [2.0, 0.5, 2.0, 1.0],
        ],
        [1, 0, 2, 2, 2],
    ),
    # Resting at the bottom; rolling into the left wall; about to reach the flag; at the flag rolling back.
    "MountainCar-v0": ([[-0.5, 0.0], [-1.19, -0.05], [0.49, 0.03], [0.55, -0.01]], [1, 0, 2, 0]),
}


@pytest.mark.parametrize("env_id", list(PORTS))
def test_batched_rows_are_independent(env_id):
    """Each row's result equals that row stepped alone (and gymnasium's one step), whatever its neighbours do."""
    module = PORTS[env_id].module
    rows, actions = BATCHES[env_id]
    together, reward, terminated = module.step(tf.constant(rows, tf.float64), tf.constant(actions, tf.int32))
    env = make_env(env_id).unwrapped
    env.reset(seed=0)
    for i, (row, action) in enumerate(zip(rows, actions, strict=True)):
        alone, alone_reward, alone_terminated = module.step(tf.constant([row], tf.float64), tf.constant([action]))
        np.testing.assert_array_equal(together.numpy()[i], alone.numpy()[0])
        assert reward.numpy()[i] == alone_reward.numpy()[0] and terminated.numpy()[i] == alone_terminated.numpy()[0]
        env.state = np.array(row, np.float64)
        _, gym_reward, gym_terminated, _, _ = env.step(action)
        np.testing.assert_allclose(together.numpy()[i], _gym_state(env), rtol=0, atol=ONE_STEP_ATOL)
        assert reward.numpy()[i] == gym_reward and terminated.numpy()[i] == gym_terminated
    env.close()
    assert terminated.numpy().any() and not terminated.numpy().all()


def test_acrobot_wrap_is_gymnasiums_loop():
    """Several turns are unwound one 2 pi at a time, as gymnasium's `wrap` does (a floor-mod rounds differently)."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-40.0, 40.0, 2000), [math.pi, -math.pi, 3 * math.pi, -3 * math.pi, 0.0]])
    expected = [gym_acrobot.wrap(v, -math.pi, math.pi) for v in values]
    np.testing.assert_array_equal(acrobot._wrap(tf.constant(values)).numpy(), expected)
    compiled = tf.function(acrobot._wrap, jit_compile=True)
    np.testing.assert_array_equal(compiled(tf.constant(values)).numpy(), expected)
