"""Acrobot-v1 dynamics in TensorFlow, for a whole population at once inside the compiled training loop.

A port of gymnasium's `AcrobotEnv.step` with its defaults: the book's equations (`book_or_nips = "book"`), no torque
noise, fourth-order Runge-Kutta over one 0.2 s step, angles wrapped into [-pi, pi] and velocities clipped. The
expressions are written in gymnasium's order, operand for operand, because the chaotic double pendulum amplifies
any rounding difference along an episode. One difference remains: gymnasium squares with numpy's scalar `x**2`,
i.e. libm's `pow(x, 2.0)`, which is off by one ulp in about 1 case in 1,000; `tf.square` rounds correctly. So a
step from the same state agrees with gymnasium to ~1e-15, not always bit for bit. Tests check it step for step
against gymnasium itself.
"""

from __future__ import annotations

import math

from dqn_core.quiet_tf import tf

# gymnasium.envs.classic_control.acrobot.AcrobotEnv constants (gymnasium 1.x).
DT = 0.2
LINK_LENGTH_1 = 1.0
LINK_MASS_1 = 1.0
LINK_MASS_2 = 1.0
LINK_COM_POS_1 = 0.5
LINK_COM_POS_2 = 0.5
LINK_MOI = 1.0
GRAVITY = 9.8
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi
AVAIL_TORQUE = (-1.0, 0.0, 1.0)
RESET_BOUND = 0.1

STATE_DIM = 4  # theta1, theta2, dtheta1, dtheta2
OBS_DIM = 6  # cos theta1, sin theta1, cos theta2, sin theta2, dtheta1, dtheta2


def reset_state(uniform: tf.Tensor) -> tf.Tensor:
    """[K, 4] float64 draws in [0, 1) -> initial states, uniform in [-0.1, 0.1) on all four coordinates.

    Mapped like numpy's `Generator.uniform` (`low + (high - low) * u`) and then rounded to float32 and back, because
    gymnasium's reset stores `uniform(...).astype(np.float32)`: the same draws give gymnasium's start state exactly.
    """
    low, high = -RESET_BOUND, RESET_BOUND
    state = low + (high - low) * uniform
    return tf.cast(tf.cast(state, tf.float32), tf.float64)


def _dsdt(state: tf.Tensor, torque: tf.Tensor) -> tf.Tensor:
    """Time derivative of [K, 4] states under a [K] torque: gymnasium's `_dsdt`, book version, same operand order."""
    m1, m2 = LINK_MASS_1, LINK_MASS_2
    l1, lc1, lc2 = LINK_LENGTH_1, LINK_COM_POS_1, LINK_COM_POS_2
    i1 = i2 = LINK_MOI
    g = GRAVITY
    a = torque
    theta1, theta2, dtheta1, dtheta2 = tf.unstack(state, axis=-1)
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * tf.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * tf.cos(theta2)) + i2
    phi2 = m2 * lc2 * g * tf.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * tf.square(dtheta2) * tf.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * tf.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * tf.cos(theta1 - math.pi / 2)
        + phi2
    )
    ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * tf.square(dtheta1) * tf.sin(theta2) - phi2) / (
        m2 * lc2**2 + i2 - tf.square(d2) / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return tf.stack([dtheta1, dtheta2, ddtheta1, ddtheta2], axis=-1)


def _rk4(state: tf.Tensor, torque: tf.Tensor) -> tf.Tensor:
    """gymnasium's `rk4` over t = [0, DT]: one classical Runge-Kutta step.

    gymnasium integrates the state with the torque appended; the torque's derivative is 0, so it stays constant
    through the stages (exactly: `a + h * 0.0 == a`) and is passed alongside instead.
    """
    dt = DT
    dt2 = dt / 2.0
    k1 = _dsdt(state, torque)
    k2 = _dsdt(state + dt2 * k1, torque)
    k3 = _dsdt(state + dt2 * k2, torque)
    k4 = _dsdt(state + dt * k3, torque)
    return state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def _wrap(x: tf.Tensor) -> tf.Tensor:
    """gymnasium's `wrap(x, -pi, pi)`: subtract (or add) 2 pi one at a time while out of range.

    Repeated subtraction rounds differently from a floor-mod, so the loop is kept. One pass is the common case, but
    an angle can leave the range by more than 2 pi in one step (the velocity bound applies only after the step;
    under an energy-pumping policy, 4 angles in about 42,000 steps needed two passes).
    """
    low, high = -math.pi, math.pi
    diff = high - low

    def down(v):
        return (tf.where(v > high, v - diff, v),)

    def up(v):
        return (tf.where(v < low, v + diff, v),)

    (x,) = tf.while_loop(lambda v: tf.reduce_any(v > high), down, (x,))
    (x,) = tf.while_loop(lambda v: tf.reduce_any(v < low), up, (x,))
    return x


def _bound(x: tf.Tensor, limit: float) -> tf.Tensor:
    """gymnasium's `bound(x, -limit, limit)`, i.e. `min(max(x, -limit), limit)`."""
    return tf.minimum(tf.maximum(x, -limit), limit)


def _terminal(state: tf.Tensor) -> tf.Tensor:
    """The free end is above the bar: `-cos(s0) - cos(s1 + s0) > 1.0`."""
    return -tf.cos(state[:, 0]) - tf.cos(state[:, 1] + state[:, 0]) > 1.0


def step(state: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One 0.2 s step for a batch: state [K, 4] float64, action [K] int32 -> (next_state, reward, terminated).

    Reward is -1.0 per step and 0.0 on the step that reaches the goal, as in gymnasium.
    """
    torque = tf.gather(tf.constant(AVAIL_TORQUE, tf.float64), action)
    ns = _rk4(state, torque)
    theta1, theta2, dtheta1, dtheta2 = tf.unstack(ns, axis=-1)
    next_state = tf.stack(
        [_wrap(theta1), _wrap(theta2), _bound(dtheta1, MAX_VEL_1), _bound(dtheta2, MAX_VEL_2)], axis=-1
    )
    terminated = _terminal(next_state)
    reward = tf.where(terminated, tf.constant(0.0, tf.float64), tf.constant(-1.0, tf.float64))
    return next_state, reward, terminated


def observe(state: tf.Tensor) -> tf.Tensor:
    """[K, 4] states -> [K, 6] observations [cos s0, sin s0, cos s1, sin s1, dtheta1, dtheta2], as `_get_ob`."""
    theta1, theta2, dtheta1, dtheta2 = tf.unstack(state, axis=-1)
    return tf.stack([tf.cos(theta1), tf.sin(theta1), tf.cos(theta2), tf.sin(theta2), dtheta1, dtheta2], axis=-1)
