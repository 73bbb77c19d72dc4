"""One verdict record: `run` computes it into the study, analysis and a resumed `run` read the same type back."""

from __future__ import annotations

import optuna
import pytest

from analysis.verdict import recorded_verdict
from sweeps.run import verdict as computing
from sweeps.study.schema import ATTR_VERDICT, held_out_seeds
from sweeps.study.verdict_record import Verdict
from tests.analysis.builders import racing_study

SEEDS = tuple(held_out_seeds(10))
WINNER = {s: 50.0 + (s % 7) for s in SEEDS}
BOOK = {s: 85.0 + (s % 11) for s in SEEDS}


def test_what_run_stores_is_what_analysis_reads():
    study = optuna.create_study()
    verdict = computing.judge(1, SEEDS, WINNER, BOOK)
    verdict.store(study)
    assert isinstance(study.user_attrs[ATTR_VERDICT], dict)  # JSON in the storage
    assert recorded_verdict(study) == Verdict.of_study(study) == verdict
    assert verdict.outcome == "better" and verdict.line.startswith("winner trial 1: median 54 (95% CI ")
    assert verdict.metrics()["verdict_seeds"] == 10 and verdict.metrics()["verdict_p_value"] == verdict.p_value


def test_the_book_as_winner_has_no_test():
    verdict = computing.judge(0, SEEDS, BOOK, BOOK, winner_is_book=True)
    assert verdict.outcome == "book won" and verdict.p_value is None and "verdict_p_value" not in verdict.metrics()
    assert Verdict.from_dict(verdict.to_dict()) == verdict


def test_an_older_record_reads_as_what_it_holds():
    study = optuna.create_study()
    assert recorded_verdict(study) is None
    study.set_user_attr(ATTR_VERDICT, {"line": "winner trial 2: ...", "winner_trial": 2, "seeds": [10000, 10001]})
    verdict = recorded_verdict(study)
    assert verdict.line == "winner trial 2: ..." and verdict.seeds == (10000, 10001)
    assert verdict.winner_ci is None and verdict.p_value is None and not verdict.winner_is_book
    assert verdict.metrics() == {"verdict_winner_trial": 2.0, "verdict_seeds": 2.0}


def test_a_resumed_run_reuses_the_recorded_values_without_training(monkeypatch):
    study = racing_study()
    recorded = computing.judge(1, SEEDS, WINNER, BOOK)
    recorded.store(study)

    def train(*args, **kwargs):
        raise AssertionError("the verdict trained again")

    monkeypatch.setattr(computing, "held_out_values", train)
    assert computing.decide(study, len(SEEDS)) == recorded
    with pytest.raises(AssertionError, match="trained again"):  # other seeds: a new verdict
        computing.decide(study, len(SEEDS) + 1)
