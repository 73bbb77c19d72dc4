"""Sweep files: the default is valid and contains the book; every malformed space is one readable error."""

import pytest

from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from sweeps.cli import DEFAULT_SWEEP
from sweeps.study.space import load_sweep


def test_default_sweep_searches_the_book_knobs_and_contains_the_book():
    sweep = load_sweep(DEFAULT_SWEEP)
    names = {p.name for p in sweep.space}
    assert {"gamma", "epsilon_decay_rate", "batch_size", "warmup"} <= names
    book = TrainConfig()
    for spec in sweep.space:
        assert spec.contains(getattr(book, spec.name)), spec.describe()
    assert sweep.study.n_trials >= 32 and sweep.study.max_seeds >= 16 and sweep.study.pruner == "wilcoxon"


def _write(tmp_path, text):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("searchspace: {}\n", "unknown section 'searchspace'"),
        ("search_space:\n  gama: {type: float, low: 0.9, high: 0.99}\n", "'gama' is not a trainer parameter"),
        ("search_space:\n  gamma: {type: float, low: 0.99, high: 0.9}\n", "low: must not exceed high, got 0.99 > 0.9"),
        ("search_space:\n  batch_size: {type: categorical, choices: []}\n", "non-empty list of choices"),
        ("search_space:\n  gamma: {type: normal, low: 0.9, high: 0.99}\n", "type: must be one of"),
        ("search_space:\n  gamma: {type: float, low: 0.9, high: 0.99, lo: 1}\n", "unknown key 'lo'"),
        ("search_space:\n  learning_rate: {type: float, low: 0, high: 0.1, log: true}\n", "log scale needs low > 0"),
        ("search_space:\n  batch_size: {type: float, low: 16, high: 64}\n", "integer parameter; use type int"),
        ("search_space:\n  warmup: {type: int, low: 0.5, high: 10}\n", "must be an integer for type int"),
        ("search_space:\n  env_id: {type: categorical, choices: [CartPole-v0, CartPole-v1]}\n", "cannot be searched"),
        ("search_space:\n  hidden_sizes: {type: categorical, choices: [[16], [0]]}\n", "entries: must be >= 1"),
        ("search_space:\n  double_dqn: {type: categorical, choices: [false, 2]}\n", "must be true or false"),
        ("search_space:\n  updates_per_step: {type: int, low: 1, high: 99}\n", "updates_per_step=99 is invalid"),
        ("search_space:\n  batch_size: {type: int, low: 16, high: 20000}\n", "batch_size=20000 is invalid"),
        ("search_space:\n  gamma: {type: float, low: 0.5, high: 1.5}\n", "gamma=1.5 is invalid"),
        ("search_space:\n  gamma: {type: float, low: x, high: 0.9}\n", "low: must be a number"),
        ("search_space: [gamma]\n", "expected a mapping"),
        ("study: {n_trials: many}\n", "n_trials: must be an integer"),
        ("study: {trials: 3}\n", "unknown key 'trials'"),
        ("study: [3]\n", "[study]: expected a mapping"),
        ("study: {study_name: 5}\n", "study_name: must be a string, got 5"),
        ("study: {seeds_in_flight: 0}\n", "seeds_in_flight: must be in [1, 1000], got 0"),
        ("study: {validate_seeds: -1}\n", "validate_seeds: must be in [0, 1000], got -1"),
        ("study: {p_threshold: yes}\n", "p_threshold: must be a number, got True"),
        ("study: {sampler: annealing}\n", "sampler: unknown value 'annealing'"),
        ("study: {max_seeds: 3, startup_seeds: 4}\n", "startup_seeds: must not exceed max_seeds, got 4 > 3"),
        ("trainer: {gamma: 2}\n", "gamma: must be in (0, 1]"),
        ("search_space:\n  gamma: [unclosed\n", "invalid YAML at line"),
    ],
)
def test_bad_sweep_files(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_sweep(_write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_grid_values(tmp_path):
    text = (
        "search_space:\n  warmup: {type: int, low: 0, high: 10, step: 5}\n"
        "  gamma: {type: float, low: 0.9, high: 0.99, step: 0.045}\n"
    )
    warmup, gamma = load_sweep(_write(tmp_path, text)).space
    assert warmup.grid_values() == [0, 5, 10]
    assert gamma.grid_values() == [0.9, 0.945, 0.99]


def test_streaming_knobs_are_searchable_and_fix_one_compiled_shape(tmp_path):
    text = (
        "trainer: {max_episodes: 50}\n"
        "search_space:\n"
        "  hidden_sizes: {type: categorical, choices: [[16, 16, 16], '64,64', [32]]}\n"
        "  updates_per_step: {type: int, low: 1, high: 4}\n"
        "  double_dqn: {type: categorical, choices: [false, true]}\n"
        "  target_refresh_steps: {type: int, low: 0, high: 500}\n"
        "  epsilon_schedule: {type: categorical, choices: [exponential, linear]}\n"
        "  epsilon_stop: {type: float, low: 0.001, high: 0.05, log: true}\n"
        "  batch_size: {type: categorical, choices: [16, 48]}\n"
    )
    sweep = load_sweep(_write(tmp_path, text))
    hidden = next(spec for spec in sweep.space if spec.name == "hidden_sizes")
    assert hidden.choices == ("16,16,16", "64,64", "32")  # scalars, as Optuna's categorical needs
    config = sweep.config_for({"hidden_sizes": "64,64", "double_dqn": True, "epsilon_schedule": "linear"})
    assert config.hidden_sizes == (64, 64) and config.double_dqn and config.epsilon_schedule == "linear"
    shape = sweep.stream_shape()
    assert shape.hidden_sizes == (64, 64, 64) and shape.batch_rows == 48  # (64, 64) deepened by an identity layer
    assert shape.max_updates == 4 and shape.double_dqn


def test_the_book_baseline_holds_every_searched_knob_as_optuna_stores_it():
    """hidden_sizes is searched as strings: the book's (16, 16, 16) must be enqueued as "16,16,16", or the sampler
    fills it in and trial 0 is not the book (it was, with knobs.yaml, a 32-32 network)."""
    sweep = load_sweep(DEFAULT_SWEEP.parent / "knobs.yaml")
    params = sweep.book_params()
    assert set(params) == {p.name for p in sweep.space}
    assert params["hidden_sizes"] == "16,16,16" and params["double_dqn"] is False
    assert sweep.config_for(params) == sweep.base.replace(**{name: getattr(TrainConfig(), name) for name in params})
