"""The per-parameter model on real Optuna studies with a planted effect, built as a racing sweep records them."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from analysis.knob_effects import COLUMNS, effects_sentence, flat_space_sentence, knob_effects
from analysis.load import trials_frame
from sweeps.study.schema import ATTR_BASE_CONFIG, ATTR_SEEDS
from tests.analysis.builders import DISTRIBUTIONS, MAX_EPISODES, MAX_SEEDS, add_trial, racing_study

PRUNED_SEEDS = 4
"""Every third trial is pruned after this many seeds, as the Wilcoxon pruner stops most trials after its startup."""


def planted_study(
    effect: float = 0.3,
    *,
    trials: int = 40,
    storage: optuna.storages.BaseStorage | None = None,
    name: str = "planted",
    seed: int = 0,
) -> optuna.Study:
    """`trials` random configurations of learning_rate (log scale), gamma and batch_size; log(episodes) rises by
    `effect` from learning_rate's low to its high end, gamma and batch_size do nothing. Seeds shift every trial
    alike (log-normal, sd 0.3), each trial has a small effect of its own (sd 0.05) and each run noise (sd 0.25);
    about 3% of the runs never solve and count as MAX_EPISODES + 1 (censored), as do runs past MAX_EPISODES. Every
    third trial is pruned after 4 seeds."""
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    study.set_user_attr(ATTR_SEEDS, list(range(MAX_SEEDS)))
    study.set_user_attr(ATTR_BASE_CONFIG, {"env_id": "CartPole-v1", "max_episodes": MAX_EPISODES})
    rng = np.random.default_rng(seed)
    seed_shift = rng.normal(0, 0.3, MAX_SEEDS)
    rate = DISTRIBUTIONS["learning_rate"]
    for number in range(trials):
        scaled = rng.uniform()
        params = {
            "learning_rate": float(np.exp(np.log(rate.low) + scaled * np.log(rate.high / rate.low))),
            "gamma": float(rng.uniform(0.9, 0.999)),
            "batch_size": [16, 32, 64][int(rng.integers(3))],
        }
        pruned = number % 3 == 2
        seeds = PRUNED_SEEDS if pruned else MAX_SEEDS
        log_values = np.log(120) + effect * scaled + rng.normal(0, 0.05) + seed_shift[:seeds]
        log_values += rng.normal(0, 0.25, seeds)
        unsolved = rng.uniform(size=seeds) < 0.03  # a seed that never solves, whatever the configuration
        values = [
            MAX_EPISODES + 1.0 if u else float(min(round(np.exp(v)), MAX_EPISODES + 1))
            for v, u in zip(log_values, unsolved, strict=True)
        ]
        add_trial(study, values, params=params, state=TrialState.PRUNED if pruned else TrialState.COMPLETE)
    return study


@pytest.fixture(scope="module")
def planted() -> optuna.Study:
    return planted_study()


def _row(table: pd.DataFrame, parameter: str, compared: str | None = None) -> pd.Series:
    rows = table[(table["parameter"] == parameter) & ((table["compared"] == compared) if compared else True)]
    assert len(rows) == 1, table
    return rows.iloc[0]


def test_the_planted_effect_is_found_and_the_null_ones_are_not(planted):
    effects = knob_effects(planted)
    table = effects.table
    assert list(table.columns) == COLUMNS and effects.reason is None
    assert sorted(table["parameter"]) == ["batch_size", "batch_size", "gamma", "learning_rate"]
    rate = _row(table, "learning_rate")
    assert rate["compared"] == "0.0003 -> 0.003"
    assert 1 < rate["ci_low"] < np.exp(0.3) < rate["ci_high"]  # planted: log ratio 0.3 across the range
    gamma = _row(table, "gamma")
    assert gamma["compared"] == "0.9 -> 0.999" and gamma["ci_low"] < 1 < gamma["ci_high"]
    for level in ("32", "64"):  # each level against the first
        batch = _row(table, "batch_size", f"16 -> {level}")
        assert batch["ci_low"] < 1 < batch["ci_high"] and np.isnan(batch["range_seen"])
    assert 0.9 < rate["range_seen"] <= 1


def test_every_run_counts_pruned_and_censored_ones_too(planted):
    effects = knob_effects(planted)
    runs = 27 * MAX_SEEDS + 13 * PRUNED_SEEDS  # 40 trials, every third pruned after 4 seeds
    assert (effects.runs, effects.trials, effects.seeds) == (runs, 40, MAX_SEEDS)
    assert (effects.table["runs"] == runs).all() and (effects.table["trials"] == 40).all()
    assert effects.resamples >= 0.9 * 400
    censored = trials_frame(planted)["episodes_to_solve"] == MAX_EPISODES + 1
    assert censored.sum() >= 5  # counted at the cap, not dropped


def test_the_flat_sentence_only_where_every_interval_allows_no_effect(planted):
    assert flat_space_sentence(knob_effects(planted)) is None
    sentence = effects_sentence(knob_effects(planted))
    assert sentence.startswith("The 95% CI excludes no effect for learning_rate 0.0003 -> 0.003: median x")
    assert "gamma" not in sentence and "batch_size" not in sentence

    flat = knob_effects(planted_study(0.0, name="flat"))
    sentence = flat_space_sentence(flat)
    assert sentence is not None and sentence == effects_sentence(flat)
    bounds = flat.table[["ci_low", "ci_high"]].to_numpy()
    assert ((bounds[:, 0] <= 1) & (bounds[:, 1] >= 1)).all()
    largest = int(sentence.split("more than ")[1].split("%")[0])
    assert largest == int(np.ceil(100 * (np.maximum(bounds, 1 / bounds).max() - 1))) and 0 < largest < 50
    assert sentence.startswith("Within the searched ranges, no parameter moves the median by more than ")


def test_the_same_study_gives_the_same_table(planted):
    first, again = knob_effects(planted), knob_effects(planted)
    pd.testing.assert_frame_equal(first.table, again.table)
    other = knob_effects(planted, seed=1)  # another bootstrap, the same fit
    pd.testing.assert_series_equal(first.table["ratio"], other.table["ratio"])
    assert not np.allclose(first.table["ci_low"], other.table["ci_low"])


def test_too_few_trials_give_an_empty_table_and_a_reason():
    effects = knob_effects(planted_study(trials=4, name="tiny"))
    assert effects.table.empty and list(effects.table.columns) == COLUMNS
    assert effects.reason.startswith("too few runs: 4 trials") and flat_space_sentence(effects) is None
    assert effects_sentence(effects).startswith("No per-parameter effect: too few runs")

    empty = optuna.create_study()
    assert knob_effects(empty).reason == "no complete or pruned trial has a seed result"


def test_a_parameter_the_trials_did_not_vary_is_named_not_estimated(planted):
    study = optuna.create_study()
    for trial in planted.get_trials(deepcopy=False):
        values = [trial.user_attrs["episodes_to_solve_per_seed"][str(s)] for s in range(len(trial.intermediate_values))]
        add_trial(study, values, state=trial.state, params={**trial.params, "gamma": 0.99})
    effects = knob_effects(study)
    assert effects.skipped == {"gamma": "the trials did not vary it"}
    assert "gamma" not in set(effects.table["parameter"])
    sentence = flat_space_sentence(effects)
    assert sentence is None  # learning_rate still has its effect
    assert "learning_rate" in effects_sentence(effects)


def test_a_conditional_parameter_is_estimated_on_the_trials_that_have_it(planted):
    """warmup exists in half the trials (a conditional space): its runs count, the others still inform the rest."""
    study = optuna.create_study()
    rng = np.random.default_rng(3)
    for number, trial in enumerate(planted.get_trials(deepcopy=False)):
        values = [trial.user_attrs["episodes_to_solve_per_seed"][str(s)] for s in range(len(trial.intermediate_values))]
        params = {**trial.params, **({"warmup": int(rng.integers(0, 21))} if number % 2 else {})}
        add_trial(study, values, state=trial.state, params=params)
    effects = knob_effects(study)
    warmup = _row(effects.table, "warmup")
    assert warmup["trials"] == 20 and 0 < warmup["runs"] < effects.runs
    assert warmup["ci_low"] < 1 < warmup["ci_high"]
    assert (
        _row(effects.table, "learning_rate")["ci_low"] > 1
        and _row(effects.table, "learning_rate")["runs"] == effects.runs
    )


def test_failed_and_lower_bound_only_trials_are_left_out():
    """The racing study: its failed trial and its older pruned trial (lower bounds only) have no run to fit."""
    effects = knob_effects(racing_study())
    assert effects.trials == 7 and effects.runs == 4 * MAX_SEEDS + 3 + 4 + 6
