"""The check every bit-for-bit test makes: two training results are the same run."""

import functools

import numpy as np


def assert_same_run(a, b) -> None:
    assert a.episodes_to_solve == b.episodes_to_solve
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.epsilons, b.epsilons)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)


@functools.cache
def lone_run(config, seed: int):
    """A (config, seed) trained alone, once per test process: several bit-for-bit tests compare with the same one."""
    from dqn_core import train

    return train(config, seed=seed)
