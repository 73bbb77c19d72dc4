"""Calibration of the paired comparison by simulation: samples drawn like this objective's (log-normal spread shared
by the two configurations on a seed, pair noise, censoring at max_episodes + 1)."""

import math

import numpy as np
import pytest

from sweeps.study.effect import compare, seeds_needed

CAP = 301  # max_episodes 300 + 1
DRAWS = 400


def _draw(rng, n, ratio, noise, median=80.0, seed_spread=0.5):
    """Per-seed values of a (ratio x b's scale) and b on n shared seeds, censored at CAP."""
    shared = rng.normal(math.log(median), seed_spread, n)
    a = np.exp(shared + math.log(ratio) + rng.normal(0, noise, n))
    b = np.exp(shared + rng.normal(0, noise, n))
    a, b = np.minimum(np.round(a), CAP), np.minimum(np.round(b), CAP)
    return dict(enumerate(a.tolist())), dict(enumerate(b.tolist()))


def _words(n, ratio, noise, draws=DRAWS, seed=0):
    rng = np.random.default_rng(seed)
    return [compare(*_draw(rng, n, ratio, noise), cap=CAP) for _ in range(draws)]


def _rate(effects, word):
    return sum(e.word == word for e in effects) / len(effects)


def _slack(p, draws=DRAWS):
    return 3 * math.sqrt(p * (1 - p) / draws)  # three standard errors of a simulated rate


def test_no_effect_says_better_or_worse_at_most_at_the_nominal_rate():
    effects = _words(32, 1.0, 0.4)
    assert _rate(effects, "better") + _rate(effects, "worse") <= 0.01 + _slack(0.01)


def test_a_planted_30_percent_effect_on_64_seeds_is_found_and_its_ci_covers_it():
    effects = _words(64, 0.7, 0.4, seed=1)
    assert _rate(effects, "better") >= 0.8
    covered = sum(e.ci95[0] <= 0.7 <= e.ci95[1] for e in effects) / len(effects)
    assert covered >= 0.95 - _slack(0.05)
    assert 0.6 < float(np.median([e.ratio for e in effects])) < 0.8


@pytest.mark.parametrize("ratio", [1.1, 0.9])
def test_equivalence_is_claimed_at_the_margin_at_most_at_the_nominal_rate(ratio):
    effects = _words(64, ratio, 0.1, seed=2)
    assert _rate(effects, "equivalent") <= 0.05 + _slack(0.05)


def test_equivalence_is_claimed_when_the_seeds_suffice_and_there_is_no_effect():
    effects = _words(64, 1.0, 0.1, seed=3)
    assert _rate(effects, "equivalent") >= 0.8
    assert all(e.phrase == "equivalent within ±10%" for e in effects if e.word == "equivalent")


def test_an_inconclusive_result_names_the_seeds_that_would_decide_it_and_they_do():
    rng = np.random.default_rng(4)
    effect = compare(*_draw(rng, 16, 0.9, 0.4), cap=CAP)
    assert effect.word == "inconclusive"
    assert effect.phrase == (
        f"inconclusive: {effect.n} seeds detect a {effect.detectable_change:.0%} change at 80% power; "
        f"~{effect.seeds_for_10} seeds would detect a 10% change"
    )
    assert effect.seeds_for_10 > effect.seeds_for_20 > 16
    # With the number of seeds the formula asks for (from the true spread), a 10% change is found often.
    n = seeds_needed(0.4 * math.sqrt(2), 0.1)
    found = _rate(_words(n, 0.9, 0.4, draws=150, seed=5), "better")
    assert found >= 0.65


def test_seeds_censored_in_both_are_left_out_and_all_censored_compares_nothing():
    effect = compare({0: CAP, 1: CAP}, {0: CAP, 1: CAP}, cap=CAP)
    assert effect.word == "inconclusive" and effect.n == 0 and math.isnan(effect.ratio)
    assert effect.phrase == "every seed censored at 301 in both (2 seeds): no comparison possible"
    a = {s: 50.0 for s in range(10)} | {10: CAP}
    b = {s: 100.0 for s in range(10)} | {10: CAP}
    effect = compare(a, b, cap=CAP)
    assert effect.n == 10 and effect.censored_in_both == 1
    assert effect.ratio == pytest.approx(0.5)
