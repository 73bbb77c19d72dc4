"""Seeds as the budget: WilcoxonPruner races trials over common seeds, the verdict judges the winner on unseen seeds."""

from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.stores.locations import open_optuna_storage
from sweeps.study.effect import Effect
from sweeps.study.schema import ATTR_VERDICT, HELD_OUT_SEED_START, StudyOptions, recorded

# gamma 0.9 is far worse than the book's 0.99 at this budget; random draws give the book's gamma again too.
GAMMA_RACE = """
study: {n_trials: 5, max_seeds: 8, slots: 16, seeds_in_flight: 4, sampler: random, pruner: wilcoxon,
        startup_seeds: 4, p_threshold: 0.1, seed: 1, validate_seeds: 0}
trainer: {max_episodes: 120}
search_space:
  gamma: {type: categorical, choices: [0.99, 0.9]}
"""


def _study(stores, name):
    return optuna.load_study(study_name=name, storage=open_optuna_storage(f"journal:{stores.journal}"))


def test_wilcoxon_prunes_a_clearly_worse_gamma_within_a_few_seeds_and_never_the_book_against_itself(tmp_path):
    from tests.helpers import Stores

    stores = Stores(tmp_path)
    stores.config.write_text(GAMMA_RACE)
    assert stores.run(study="race") == 0
    trials = _study(stores, "race").get_trials(deepcopy=False)
    book = trials[0]
    assert book.user_attrs["baseline"] == "book" and book.state == TrialState.COMPLETE
    same = [t for t in trials[1:] if t.params["gamma"] == 0.99]
    worse = [t for t in trials[1:] if t.params["gamma"] == 0.9]
    assert same and worse, "the random draws must give both values for this test to mean anything"
    for trial in same:  # the book against itself: identical seeds give identical values, never pruned
        assert trial.state == TrialState.COMPLETE
        assert trial.intermediate_values == book.intermediate_values and len(book.intermediate_values) == 8
    for trial in worse:
        assert trial.state == TrialState.PRUNED
        assert 4 <= len(trial.intermediate_values) <= 6  # stopped after a few seeds, not all 8
        assert set(trial.intermediate_values) == set(range(len(trial.intermediate_values)))  # seeds 0, 1, 2, ...


VERDICT_SWEEP = """
study: {n_trials: 3, max_seeds: 2, slots: 8, sampler: random, pruner: none, seed: 4, validate_seeds: 6}
trainer: {max_episodes: 40}
search_space:
  epsilon_decay_rate: {type: float, low: 0.002, high: 0.01, log: true}
"""


def test_run_ends_with_a_verdict_on_unseen_seeds_logged_to_the_study_and_its_parent_run(tmp_path, capsys):
    from tests.helpers import Stores

    stores = Stores(tmp_path)
    stores.config.write_text(VERDICT_SWEEP)
    assert stores.run(study="verdict") == 0
    out = capsys.readouterr().out
    study = _study(stores, "verdict")
    verdict = recorded(study, ATTR_VERDICT)
    winner = study.best_trial
    assert verdict["winner_trial"] == winner.number
    assert verdict["seeds"] == list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 6))
    assert out.splitlines()[0] == verdict["line"]  # printed first
    line = verdict["line"]
    # Six pairs cannot reach p < 0.01 (two-sided signed-rank, exact p >= 2/64): the verdict must not claim.
    assert verdict["outcome"] in ("equivalent", "inconclusive")
    assert line.endswith(Effect.from_dict(verdict["effect"]).phrase)
    if verdict["winner_is_book"]:
        runner_up = verdict["compared_trial"]
        assert line.startswith(f"winner trial {winner.number} is the book's configuration: median ")
        assert f"on 6 unseen seeds; runner-up trial {runner_up} vs book: " in line
        assert runner_up != winner.number and len(verdict["runner_up_values"]) == 6
    else:
        assert line.startswith(f"winner trial {winner.number}: median ")
        assert " vs book " in line and "on 6 unseen seeds; " in line
        assert verdict["p_value"] is None or verdict["p_value"] >= 0.03
        assert verdict["compared_trial"] == winner.number
    assert len(verdict["winner_values"]) == len(verdict["seeds"])  # a list in seed order

    client = MlflowClient(stores.tracking_uri)
    experiment = client.get_experiment_by_name("verdict")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'study'")
    assert parent.data.tags["dqn_sweep.verdict"] == line
    assert parent.data.metrics["verdict_seeds"] == 6
    assert parent.data.metrics["verdict_winner_median"] == verdict["winner_median"]
    assert parent.data.tags["dqn_sweep.verdict_outcome"] == verdict["outcome"]
    assert parent.data.metrics["verdict_equivalence_margin"] == 0.1
    if verdict["effect"]["n"]:
        assert parent.data.metrics["verdict_ratio"] == verdict["effect"]["ratio"]
        assert parent.data.metrics["verdict_seeds_for_10pct"] == verdict["effect"]["seeds_for_10"]

    # A resume with nothing left to do gives the same verdict without training again.
    assert stores.run(study="verdict") == 0
    assert capsys.readouterr().out.splitlines()[0] == line


def test_study_options_are_one_list_for_flags_files_and_the_study_record(tmp_path):
    from sweeps.cli import build_parser

    flags = build_parser().parse_args(["run", "--max-seeds", "24", "--p-threshold", "0.05"])
    assert flags.max_seeds == 24 and flags.p_threshold == 0.05
    recorded = StudyOptions(max_seeds=24).to_dict()
    assert StudyOptions.from_mapping(recorded, source="record") == StudyOptions(max_seeds=24)
    for name in recorded:  # every option is a `run` flag
        assert getattr(flags, name, "missing") != "missing", name
