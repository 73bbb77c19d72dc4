"""CartPole dynamics in TensorFlow, for a whole population at once inside the compiled training loop.

A port of gymnasium's `CartPoleEnv.step` (as PureJaxRL does with gymnax): stepping every agent's environment in the
graph removes the host round trip per step. Tests check it step for step against gymnasium itself.

`STATE_DIM`, `OBS_DIM`, `reset_state`, `step` and `observe` are the interface every in-graph env module shares
(`dqn_core.acrobot`, `dqn_core.mountaincar`); `cartpole_step` is the older two-output form.
"""

from __future__ import annotations

import math

from dqn_core.quiet_tf import tf

# gymnasium.envs.classic_control.cartpole.CartPoleEnv constants (gymnasium 1.x).
GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
HALF_LENGTH = 0.5
POLEMASS_LENGTH = MASS_POLE * HALF_LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
RESET_BOUND = 0.05

STATE_DIM = 4  # x, x_dot, theta, theta_dot
OBS_DIM = 4  # the observation is the state


def reset_state(uniform: tf.Tensor) -> tf.Tensor:
    """[K, 4] float64 draws in [0, 1) -> initial states, uniform in [-0.05, 0.05) on all four coordinates.

    Written `(2u - 1) * 0.05` as the trainer always had it, not numpy's `low + (high - low) * u`: the two differ in
    the last bit for some draws, and every CartPole result recorded so far (the book's episodes to solve included)
    must stay bit for bit what it was.
    """
    return (uniform * 2.0 - 1.0) * RESET_BOUND


def cartpole_step(state: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One Euler step for a batch: state [K, 4] float64, action [K] int -> (next_state, terminated).

    Operation order follows gymnasium's `CartPoleEnv.step` so float64 results agree with it.
    """
    x, x_dot, theta, theta_dot = tf.unstack(state, axis=-1)
    force = tf.where(action == 1, FORCE_MAG, -FORCE_MAG)
    force = tf.cast(force, tf.float64)
    costheta = tf.cos(theta)
    sintheta = tf.sin(theta)
    temp = (force + POLEMASS_LENGTH * tf.square(theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * tf.square(costheta) / TOTAL_MASS)
    )
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    next_state = tf.stack(
        [x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc], axis=-1
    )
    nx, ntheta = next_state[:, 0], next_state[:, 2]
    terminated = (nx < -X_THRESHOLD) | (nx > X_THRESHOLD) | (ntheta < -THETA_THRESHOLD) | (ntheta > THETA_THRESHOLD)
    return next_state, terminated


def step(state: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`cartpole_step` plus the reward: (next_state, reward, terminated).

    gymnasium pays 1.0 on every step, the one that ends the episode included.
    """
    next_state, terminated = cartpole_step(state, action)
    reward = tf.ones(tf.shape(terminated), tf.float64)
    return next_state, reward, terminated


def observe(state: tf.Tensor) -> tf.Tensor:
    """[K, 4] states -> [K, 4] observations: gymnasium returns the state itself (cast to float32 by the caller)."""
    return tf.identity(state)
