"""One verdict record: `run` computes it into the study, analysis and a resumed `run` read the same type back."""

from __future__ import annotations

import optuna
import pytest

from analysis.verdict import recorded_verdict
from sweeps.run import verdict as computing
from sweeps.study.schema import ATTR_BASE_CONFIG, ATTR_SEEDS, ATTR_VERDICT, held_out_seeds, recorded
from sweeps.study.verdict_record import Verdict
from tests.analysis.builders import MAX_EPISODES, MAX_SEEDS, add_trial, racing_study

SEEDS = tuple(held_out_seeds(10))
WINNER = {s: 50.0 + (s % 7) for s in SEEDS}
BOOK = {s: 85.0 + (s % 11) for s in SEEDS}
CAP = 301.0


def test_what_run_stores_is_what_analysis_reads():
    study = optuna.create_study()
    verdict = computing.judge(1, SEEDS, WINNER, BOOK, cap=CAP)
    verdict.store(study)
    assert isinstance(recorded(study, ATTR_VERDICT), dict)  # JSON in the storage
    assert recorded(study, ATTR_VERDICT)["winner_values"] == [WINNER[s] for s in SEEDS]  # compact: seed order
    assert study.user_attrs[ATTR_VERDICT] == verdict.line  # what Optuna's tools show: the line alone
    assert recorded_verdict(study) == Verdict.of_study(study) == verdict
    assert verdict.outcome == "better" and verdict.line.startswith("winner trial 1: median 54 (95% CI ")
    effect = verdict.effect
    assert verdict.line.endswith(
        f"on 10 unseen seeds; ratio {effect.ratio:.2f} (95% CI {effect.ci95[0]:.2f}-{effect.ci95[1]:.2f}), "
        f"paired Wilcoxon p={effect.p_value:.2g}: better"
    )
    assert effect.ci95[0] < effect.ratio < effect.ci95[1] < 1 and verdict.compared_trial == 1
    metrics = verdict.metrics()
    assert metrics["verdict_seeds"] == 10 and metrics["verdict_p_value"] == verdict.p_value == effect.p_value
    assert metrics["verdict_ratio"] == effect.ratio and metrics["verdict_ratio_ci_high"] == effect.ci95[1]
    assert metrics["verdict_seeds_for_10pct"] == effect.seeds_for_10 and metrics["verdict_equivalence_margin"] == 0.1


def test_the_book_as_winner_compares_the_runner_up_with_the_book():
    runner_up = {s: v * (1.03 if s % 2 else 0.99) for s, v in BOOK.items()}
    verdict = computing.judge(0, SEEDS, BOOK, BOOK, cap=CAP, winner_is_book=True, runner_up=(7, runner_up))
    assert verdict.compared_trial == 7 and verdict.runner_up_values == runner_up
    assert verdict.outcome == verdict.effect.word == "equivalent"  # within a few % on every seed, both ways
    assert verdict.line.startswith("winner trial 0 is the book's configuration: median ")
    assert "on 10 unseen seeds; runner-up trial 7 vs book: ratio 1.0" in verdict.line
    assert verdict.line.endswith(": equivalent within ±10%")
    assert Verdict.from_dict(verdict.to_dict()) == verdict
    alone = computing.judge(0, SEEDS, BOOK, BOOK, cap=CAP, winner_is_book=True)
    assert alone.outcome == "inconclusive" and alone.p_value is None and "verdict_p_value" not in alone.metrics()
    assert alone.line.endswith("no other configuration finished every seed: inconclusive")


def test_every_seed_censored_in_both_says_so_instead_of_a_ratio_of_one():
    censored = dict.fromkeys(SEEDS, CAP)
    verdict = computing.judge(1, SEEDS, censored, censored, cap=CAP)
    assert verdict.outcome == "inconclusive" and verdict.p_value is None and "verdict_ratio" not in verdict.metrics()
    assert verdict.line.endswith("; every seed censored at 301 in both (10 seeds): no comparison possible")


def test_the_margin_decides_equivalence():
    near = {s: v * (1.05 if s % 2 else 0.97) for s, v in BOOK.items()}
    assert computing.judge(1, SEEDS, near, BOOK, cap=CAP, margin=0.1).outcome == "equivalent"
    assert computing.judge(1, SEEDS, near, BOOK, cap=CAP, margin=0.02).outcome == "inconclusive"


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
    recorded = computing.judge(1, SEEDS, WINNER, BOOK, cap=MAX_EPISODES + 1)
    recorded.store(study)

    def train(*args, **kwargs):
        raise AssertionError("the verdict trained again")

    monkeypatch.setattr(computing, "held_out_values", train)
    assert computing.decide(study, len(SEEDS)) == recorded
    with pytest.raises(AssertionError, match="trained again"):  # other seeds: a new verdict
        computing.decide(study, len(SEEDS) + 1)


def test_when_the_book_wins_the_runner_up_is_trained_once_beside_it(monkeypatch):
    study = optuna.create_study()
    study.set_user_attr(ATTR_SEEDS, list(range(MAX_SEEDS)))
    study.set_user_attr(ATTR_BASE_CONFIG, {"env_id": "CartPole-v1", "max_episodes": MAX_EPISODES})
    book = [60.0 + s for s in range(MAX_SEEDS)]
    add_trial(study, book, params={"gamma": 0.99, "batch_size": 32}, book=True)
    add_trial(study, [v + 20 for v in book], params={"gamma": 0.97, "batch_size": 32})  # the runner-up
    add_trial(study, [v + 40 for v in book], params={"gamma": 0.95, "batch_size": 32})
    trained = []

    def train(configs, seeds, **kwargs):
        trained.append([config.gamma for config in configs])
        return [{s: 70.0 + (s % 5) + 10 * (config.gamma < 0.99) for s in seeds} for config in configs]

    monkeypatch.setattr(computing, "held_out_values", train)
    verdict = computing.decide(study, len(SEEDS))
    assert trained == [[0.99, 0.97]]  # the book and the runner-up, in one population
    assert verdict.winner_is_book and verdict.winner_trial == 0 and verdict.compared_trial == 1
    assert verdict.outcome == "worse" and "runner-up trial 1 vs book: ratio " in verdict.line
    assert computing.decide(study, len(SEEDS)) == verdict and len(trained) == 1  # resumed: nothing trained


def test_tables_show_the_runner_up_and_what_the_comparison_means():
    from analysis.verdict import effect_table, verdict_table

    runner_up = {s: v * (1.03 if s % 2 else 0.99) for s, v in BOOK.items()}
    verdict = computing.judge(0, SEEDS, BOOK, BOOK, cap=CAP, winner_is_book=True, runner_up=(7, runner_up))
    table = verdict_table(verdict).set_index("config")
    assert table.index.tolist() == ["winner", "book", "runner-up"] and table.loc["runner-up", "trial"] == "7"
    assert table.loc["runner-up", "paired p"] == f"{verdict.p_value:.2g}" and table.loc["winner", "paired p"] == ""
    effects = effect_table(verdict).set_index("")["value"]
    assert effects["compared"] == "runner-up (trial 7) / book, paired by seed"
    assert effects["verdict"] == "equivalent within ±10%" and effects["seeds compared"].startswith("10 ")
    older = Verdict.from_dict({"line": "winner trial 2: ...", "winner_trial": 2, "seeds": [10000]})
    assert effect_table(older) is None
