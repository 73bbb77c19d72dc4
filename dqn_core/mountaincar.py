"""MountainCar-v0 dynamics in TensorFlow, for a whole population at once inside the compiled training loop.

A port of gymnasium's `MountainCarEnv.step`: velocity and position are updated and clipped in float64 in
gymnasium's operation order, so the results agree with it bit for bit. Tests check it step for step against
gymnasium itself.
"""

from __future__ import annotations

from dqn_core.quiet_tf import tf

# gymnasium.envs.classic_control.mountain_car.MountainCarEnv constants (gymnasium 1.x, goal_velocity=0).
MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GOAL_POSITION = 0.5
GOAL_VELOCITY = 0.0
FORCE = 0.001
GRAVITY = 0.0025
RESET_LOW, RESET_HIGH = -0.6, -0.4

STATE_DIM = 2  # position, velocity
OBS_DIM = 2


def reset_state(uniform: tf.Tensor) -> tf.Tensor:
    """[K, 2] float64 draws in [0, 1) -> initial states: position uniform in [-0.6, -0.4), velocity 0.

    Only the first column is used (gymnasium draws one number); mapped like numpy's `Generator.uniform`,
    `low + (high - low) * u`, so the same draw gives gymnasium's start position exactly.
    """
    position = RESET_LOW + (RESET_HIGH - RESET_LOW) * uniform[:, 0]
    return tf.stack([position, tf.zeros_like(position)], axis=-1)


def step(state: tf.Tensor, action: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One step for a batch: state [K, 2] float64, action [K] int32 (0 left, 1 none, 2 right).

    Returns (next_state, reward, terminated); the reward is -1.0 on every step, the terminating one included.
    """
    position, velocity = tf.unstack(state, axis=-1)
    push = tf.cast(action - 1, tf.float64) * FORCE
    velocity = velocity + (push + tf.cos(3 * position) * (-GRAVITY))
    velocity = tf.clip_by_value(velocity, -MAX_SPEED, MAX_SPEED)
    position = position + velocity
    position = tf.clip_by_value(position, MIN_POSITION, MAX_POSITION)
    # The left wall is inelastic: a car that hits it stops.
    velocity = tf.where((position == MIN_POSITION) & (velocity < 0), tf.zeros_like(velocity), velocity)
    terminated = (position >= GOAL_POSITION) & (velocity >= GOAL_VELOCITY)
    reward = tf.fill(tf.shape(position), tf.constant(-1.0, tf.float64))
    return tf.stack([position, velocity], axis=-1), reward, terminated


def observe(state: tf.Tensor) -> tf.Tensor:
    """[K, 2] states -> [K, 2] observations: gymnasium returns the state itself (cast to float32 by the caller)."""
    return tf.identity(state)
