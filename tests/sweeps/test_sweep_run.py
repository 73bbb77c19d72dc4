"""End-to-end sweeps on real stores: Optuna journal + MLflow SQLite, checked through their own clients."""

from __future__ import annotations

import statistics

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from dqn_core.config import TrainConfig
from sweeps.cli import main
from sweeps.run.replay import retrain_agent
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.schema import record

SEARCHED = ("gamma", "epsilon_decay_rate", "batch_size", "warmup", "learning_rate")


def _study(stores, name="tiny"):
    return optuna.load_study(study_name=name, storage=open_optuna_storage(f"journal:{stores.journal}"))


def _trial_runs(client, experiment_id):
    runs = client.search_runs([experiment_id], "tags.`dqn_sweep.role` = 'trial'", max_results=1000)
    return {int(r.data.tags["dqn_sweep.trial_number"]): r for r in runs}


def _curves(client, run_id, tmp_path_factory):
    import pandas as pd

    folder = tmp_path_factory.mktemp("curves")
    return pd.read_csv(client.download_artifacts(run_id, "curves.csv", str(folder)))


def test_sweep_records_trials_in_optuna_and_mlflow(tiny_sweep, tmp_path_factory):
    study = _study(tiny_sweep)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6 and not [t for t in trials if t.state == TrialState.RUNNING]
    book = TrainConfig()
    assert trials[0].params == {name: getattr(book, name) for name in SEARCHED}  # the baseline is trial 0
    for trial in finished:
        per_seed = trial.user_attrs["episodes_to_solve_per_seed"]
        assert all(5 <= v <= 101 for v in per_seed.values())
        assert trial.user_attrs["censored"] == any(v == 101 for v in per_seed.values())
        # Every finished seed is an intermediate value at step = seed (WilcoxonPruner's contract).
        assert trial.intermediate_values == {int(s): float(v) for s, v in per_seed.items()}
        if trial.state == TrialState.COMPLETE:
            assert set(per_seed) == {"0", "1", "2", "3", "4"}
            assert trial.value == sorted(per_seed.values())[2]  # the median of five seeds
        else:  # pruned: the seeds it finished, a prefix of 0, 1, 2, ... (seeds are handed out in order)
            assert 4 <= len(per_seed) < 5
            assert trial.value == statistics.median(per_seed.values())  # not Optuna's default, the last seed's value

    client = MlflowClient(tiny_sweep.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    parents = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'study'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = _trial_runs(client, experiment.experiment_id)
    assert sorted(runs) == [t.number for t in finished]
    for trial in finished:
        run = runs[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["dqn_sweep.state"] == trial.state.name
        assert run.data.tags["dqn_sweep.sampler"] == "tpe" and run.data.tags["dqn_sweep.pruner"] == "wilcoxon"
        assert run.info.status == "FINISHED"
        for name in SEARCHED:
            assert float(run.data.params[name]) == pytest.approx(float(trial.params[name]))
        assert run.data.params["seeds"] == "0,1,2,3,4" and run.data.params["max_episodes"] == "100"
        curves = _curves(client, run.info.run_id, tmp_path_factory)
        assert set(curves["seed"]) >= {int(s) for s in trial.user_attrs["episodes_to_solve_per_seed"]}
        for _, rows in curves.groupby("seed"):
            assert rows["episode"].tolist() == list(range(1, len(rows) + 1)) and rows["steps"].between(1, 200).all()
            assert (rows["epsilon"].diff().dropna() <= 0).all()
        history = client.get_metric_history(run.info.run_id, "steps_median")
        if trial.state == TrialState.COMPLETE:  # complete trials also chart their learning curve in MLflow
            median = curves.groupby("episode")["steps"].median()
            assert [m.step for m in history] == median.index.tolist()
            assert [m.value for m in history] == median.tolist()
        else:
            assert history == []
        assert {"wall_time_s", "env_steps", "seeds"} <= set(run.data.metrics)
        per_seed = trial.user_attrs["episodes_to_solve_per_seed"]
        assert run.data.metrics["seeds"] == len(per_seed)
        for seed, value in per_seed.items():  # the per-seed values are in MLflow too
            assert run.data.metrics[f"per_seed/seed_{seed}_episodes_to_solve"] == value
        if trial.state == TrialState.COMPLETE:
            assert run.data.metrics["episodes_to_solve"] == trial.value
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "curves.csv"} <= names
        assert ("learning_curve.png" in names) == (trial.number == study.best_trial.number)  # drawn for the best

    best = runs[study.best_trial.number]
    names = {a.path for a in client.list_artifacts(best.info.run_id)}
    assert "greedy_episode.gif" in names and any(n.startswith("agent_seed") for n in names)


def test_pruned_trials_are_pruned_in_both_stores(tiny_sweep):
    study = _study(tiny_sweep)

    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    assert pruned, "the tiny sweep includes a learning rate of 1e-5, which the Wilcoxon pruner must stop"
    client = MlflowClient(tiny_sweep.tracking_uri)
    runs = _trial_runs(client, client.get_experiment_by_name("tiny").experiment_id)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for trial in pruned:
        assert runs[trial.number].data.tags["dqn_sweep.state"] == "PRUNED"
        # Pruned only where some complete trial was better on the common seeds, every one of them here (with 4
        # seeds, a one-sided signed-rank p < 0.1 needs all four differences on one side).
        mine = trial.intermediate_values
        assert any(all(mine[s] > other.intermediate_values[s] for s in mine) for other in complete)


def test_best_trial_alone_reproduces_its_value(tiny_sweep):
    study = _study(tiny_sweep)
    best = study.best_trial
    for seed, value in best.user_attrs["episodes_to_solve_per_seed"].items():
        _, solved_at = retrain_agent(study, best, int(seed))
        assert (solved_at or 101) == value


def test_resume_adds_only_missing_trials(tiny_sweep, tmp_path):
    import shutil

    from tests.helpers import Stores

    stores = Stores(tmp_path)  # a copy, so the session fixture stays as the other tests expect
    shutil.copy(tiny_sweep.journal, stores.journal)
    shutil.copy(tiny_sweep.root / "mlflow.db", tmp_path / "mlflow.db")
    shutil.copytree(tiny_sweep.root / "mlruns", tmp_path / "mlruns", dirs_exist_ok=True) if (
        tiny_sweep.root / "mlruns"
    ).exists() else None
    before = _study(stores).get_trials(deepcopy=False)
    assert stores.run("--n-trials", "6") == 0  # already complete: nothing to do
    assert len(_study(stores).get_trials(deepcopy=False)) == len(before)
    assert stores.run("--n-trials", "8", "--slots", "4") == 0
    trials = _study(stores).get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(len(trials)))
    assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 8
    for old, new in zip(before, trials, strict=False):
        assert (old.params, old.value, old.state) == (new.params, new.value, new.state)
    client = MlflowClient(stores.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    assert len(client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'study'")) == 1
    assert len(_trial_runs(client, experiment.experiment_id)) == 8


def test_same_seed_same_trials(tiny_sweep, tmp_path):
    from tests.helpers import Stores

    again = Stores(tmp_path)
    assert again.run() == 0
    first = _study(tiny_sweep).get_trials(deepcopy=False)[:6]
    second = _study(again).get_trials(deepcopy=False)[:6]
    assert [(t.params, t.value, t.state) for t in first] == [(t.params, t.value, t.state) for t in second]


def test_best_and_replay_commands(tiny_sweep, capsys, tmp_path):
    common = ["--storage", f"journal:{tiny_sweep.journal}", "--tracking-uri", tiny_sweep.tracking_uri]
    assert main(["best", *common]) == 0
    out = capsys.readouterr().out
    study = _study(tiny_sweep)
    import re

    assert re.search(rf"^best trial +{study.best_trial.number}$", out, re.MULTILINE)
    assert re.search(r"^episodes to solve \(median of 5 seeds\) +", out, re.MULTILINE)
    assert f"{study.best_value:g}" in out and "gamma" in out

    gif = tmp_path / "replay.gif"
    assert main(["replay", "--trial", "0", "--out", str(gif), *common]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"
    run_id = study.trials[0].user_attrs["mlflow_run_id"]
    client = MlflowClient(tiny_sweep.tracking_uri)
    assert "greedy_episode.gif" in {a.path for a in client.list_artifacts(run_id)}


def _checksums(folder):
    import hashlib

    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sampler", "annealing"], "--sampler: unknown value 'annealing'"),
        (["--pruner", "hyperband"], "--pruner: unknown value 'hyperband'"),
        (["--n-trials", "0"], "n-trials: must be in [1, 100000], got 0"),
        (["--max-seeds", "1"], "max-seeds: must be in [2, 1000], got 1"),
        (["--slots", "-2"], "slots: must be in [1, 1024], got -2"),
        (["--p-threshold", "1.5"], "p-threshold: must be in [0, 1], got 1.5"),
        (["--startup-seeds", "9"], "startup-seeds: must not exceed --max-seeds, got 9 > 5"),
        (["--seeds-in-flight", "0"], "--seeds-in-flight: must be in [1, 1000], got 0"),
        (["--validate-seeds", "5000"], "--validate-seeds: must be in [0, 1000], got 5000"),
        (["--n-trials", "ten"], "invalid int value"),
        (["--storage", "journal:/no/such/dir/j.log"], "journal folder does not exist"),
        (["--storage", "postgresql://bob:hunter2@127.0.0.1:1/optuna"], "cannot open Optuna storage"),
        (["--tracking-uri", "sqlite:////no/such/dir/mlflow.db"], "tracking store folder does not exist"),
        (["--config", "/no/such/sweep.yaml"], "config file not found"),
    ],
)
def test_run_bad_input_is_one_line_and_changes_nothing(tiny_sweep, capsys, extra, message):
    before = _checksums(tiny_sweep.root)
    assert tiny_sweep.run(*extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "hunter2" not in err
    assert _checksums(tiny_sweep.root) == before


def test_resuming_with_another_sweep_config_is_refused(tiny_sweep, capsys, tmp_path):
    before = _checksums(tiny_sweep.root)
    other = tmp_path / "other.yaml"
    other.write_text(tiny_sweep.config.read_text().replace("max_episodes: 100", "max_episodes: 101"))
    argv = tiny_sweep.argv()
    argv[argv.index("--config") + 1] = str(other)
    assert main(argv) == 2
    assert "was created from a different sweep config" in capsys.readouterr().err
    assert _checksums(tiny_sweep.root) == before


def test_tracking_store_that_is_not_sqlite(tmp_path, capsys):
    from tests.helpers import Stores

    stores = Stores(tmp_path)
    (tmp_path / "mlflow.db").write_text("this is not a database")
    assert stores.run() == 2
    assert "is not an SQLite database" in capsys.readouterr().err
    assert (tmp_path / "mlflow.db").read_text() == "this is not a database"


def test_unknown_study_for_best_and_replay(tiny_sweep, capsys, tmp_path):
    common = ["--storage", f"journal:{tiny_sweep.journal}", "--tracking-uri", tiny_sweep.tracking_uri]
    assert main(["best", "--study-name", "nope", *common]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err
    assert main(["replay", "--trial", "999", *common]) == 2
    assert "has no trial 999" in capsys.readouterr().err
    missing = ["--storage", f"journal:{tmp_path / 'none.log'}"]
    assert main(["best", *missing]) == 2
    assert "no Optuna journal at" in capsys.readouterr().err
    assert not (tmp_path / "none.log").exists()


KNOBS_SWEEP = """
study: {n_trials: 4, max_seeds: 2, slots: 8, sampler: random, pruner: none, seed: 3, validate_seeds: 0}
trainer: {max_episodes: 12}
search_space:
  hidden_sizes: {type: categorical, choices: ["16,16,16", "32,32"]}
  updates_per_step: {type: int, low: 1, high: 2}
  double_dqn: {type: categorical, choices: [false, true]}
  target_refresh_steps: {type: categorical, choices: [0, 100]}
  epsilon_schedule: {type: categorical, choices: [exponential, linear]}
  epsilon_stop: {type: float, low: 0.01, high: 0.1, log: true}
"""


def test_streaming_knobs_are_searched_end_to_end(tmp_path):
    """The new per-slot knobs come from a sweep YAML, reach Optuna and MLflow, and each trial replays alone."""
    from tests.helpers import Stores

    stores = Stores(tmp_path)
    stores.config.write_text(KNOBS_SWEEP)
    assert stores.run(study="knobs") == 0
    study = _study(stores, "knobs")
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert {t.params["hidden_sizes"] for t in trials} <= {"16,16,16", "32,32"}
    assert {type(t.params["double_dqn"]) for t in trials} == {bool}
    client = MlflowClient(stores.tracking_uri)
    runs = _trial_runs(client, client.get_experiment_by_name("knobs").experiment_id)
    for trial in trials:
        assert runs[trial.number].data.params["updates_per_step"] == str(trial.params["updates_per_step"])
        _, solved_at = retrain_agent(study, trial, 0)
        assert (solved_at or 13) == trial.user_attrs["episodes_to_solve_per_seed"]["0"]


def test_one_storage_spelling_for_every_tool_and_the_objective_named(tiny_sweep, capsys):
    """A bare journal path works where Optuna's CLI and optuna-dashboard take one; the value has a metric name."""
    common = ["--tracking-uri", tiny_sweep.tracking_uri]
    assert main(["best", "--study", "tiny", "--storage", str(tiny_sweep.journal), *common]) == 0
    bare = capsys.readouterr().out
    assert main(["best", "--study-name", "tiny", "--storage", f"journal:{tiny_sweep.journal}", *common]) == 0
    assert capsys.readouterr().out == bare
    assert _study(tiny_sweep).metric_names == ["episodes_to_solve"]


def test_version_and_python_dash_m(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("dqn-sweep 0.")
    out = subprocess.run([sys.executable, "-m", "sweeps", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--max-seeds" in out.stdout and "--validate-seeds" in out.stdout


def test_a_worker_refuses_a_study_made_before_seeds_were_raced(tiny_sweep, tmp_path, capsys):
    import shutil

    journal = tmp_path / "old.log"
    shutil.copy(tiny_sweep.journal, journal)
    old = optuna.load_study(study_name="tiny", storage=open_optuna_storage(f"journal:{journal}"))
    record(old, "sweep_options", {"n_trials": 6, "n_seeds": 2, "trials_per_batch": 3})  # the old record's options
    argv = ["worker", "--study-name", "tiny", "--storage", f"journal:{journal}", "--tracking-uri"]
    before = journal.read_bytes()
    assert main([*argv, f"sqlite:///{tmp_path / 'mlflow.db'}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "was made before seeds were raced (it records no max_seeds)" in err and len(err.splitlines()) == 1
    assert journal.read_bytes() == before
