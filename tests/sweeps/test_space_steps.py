"""A search-space step must divide its range: Optuna would otherwise move `high` (a step larger than the range
leaves a single value) with a multi-line UserWarning. Refused in one line; steps that divide stay silent."""

import warnings

import optuna
import pytest

from dqn_core.errors import ConfigError
from sweeps.study.space import load_sweep


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("warmup: {type: int, low: 0, high: 10, step: 20}", "warmup: step 20 is larger than the range [0, 10]"),
        (
            "warmup: {type: int, low: 0, high: 10, step: 3}",
            "warmup: step 3 does not divide the range [0, 10]; use high 9",
        ),
        ("gamma: {type: float, low: 0.9, high: 0.99, step: 0.5}", "gamma: step 0.5 is larger than the range"),
        (
            "gamma: {type: float, low: 0.9, high: 0.99, step: 0.04}",
            "does not divide the range [0.9, 0.99]; use high 0.98",
        ),
    ],
)
def test_a_step_that_does_not_divide_the_range_is_one_line(param, message, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(f"search_space:\n  {param}\n")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_steps_that_divide_are_drawn_without_a_warning(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "search_space:\n  warmup: {type: int, low: 0, high: 20, step: 5}\n"
        "  gamma: {type: float, low: 0.9, high: 0.99, step: 0.045}\n"
        "  batch_size: {type: int, low: 32, high: 32, step: 64}\n"
    )
    sweep = load_sweep(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trial = optuna.create_study().ask()
        values = {spec.name: spec.suggest(trial) for spec in sweep.space}
    assert values["warmup"] in (0, 5, 10, 15, 20) and values["batch_size"] == 32
