"""The check every bit-for-bit test makes: two training results are the same run."""

import numpy as np


def assert_same_run(a, b) -> None:
    assert a.episodes_to_solve == b.episodes_to_solve
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.epsilons, b.epsilons)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x, y)
