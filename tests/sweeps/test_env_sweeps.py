"""A short Acrobot sweep end to end: Optuna trials, MLflow runs with curves, the best agent's GIF rendered
headless, the verdict and the report, as for CartPole."""

from __future__ import annotations

from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.study.existing import load_existing_study
from sweeps.study.schema import base_config


def test_a_short_acrobot_sweep_end_to_end(tmp_path, capsys):
    sweep = yaml.safe_load(Path("sweeps/configs/acrobot.yaml").read_text())
    sweep["study"].update(n_trials=3, max_seeds=2, startup_seeds=2, slots=8, pruner="none", validate_seeds=2)
    sweep["trainer"]["max_episodes"] = 12
    config = tmp_path / "acro.yaml"
    config.write_text(yaml.safe_dump(sweep))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--storage", str(tmp_path / "optuna-journal.log"), "--tracking-uri", uri]
    assert main(["run", "--config", str(config), "--no-progress", *common]) == 0
    out = capsys.readouterr().out
    assert "on 2 unseen seeds" in out.splitlines()[0]  # the verdict line comes first

    study = load_existing_study("acro", str(tmp_path / "optuna-journal.log"), uri)
    assert base_config(study).env_id == "Acrobot-v1" and base_config(study).success_threshold == -100
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 3
    assert all(t.value == 13 for t in study.trials)  # 12 episodes are too few to solve: censored at 13

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("acro")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`dqn_sweep.role` = 'trial'")
    assert len(runs) == 3 and all(r.data.params["env_id"] == "Acrobot-v1" for r in runs)
    best = next(r for r in runs if r.data.tags["dqn_sweep.trial_number"] == str(study.best_trial.number))
    assert {"curves.csv", "greedy_episode.gif", "learning_curve.png"} <= {
        a.path for a in client.list_artifacts(best.info.run_id)
    }

    report = tmp_path / "acro.html"
    assert main(["report", "--study-name", "acro", "--out", str(report), *common]) == 0
    assert "Acrobot-v1" in report.read_text()


def test_a_host_stepped_env_sweeps_end_to_end_without_frames(tmp_path, capsys):
    """An env with no in-graph port (host-stepped) and no rgb_array rendering: the sweep, verdict and report
    work, the best agent is logged without a GIF (said so, not reported as a tracking failure), and `replay` is
    one line."""
    from tests.dqn_core.test_host_stepped import CORRIDOR  # registers the env

    config = tmp_path / "corridor.yaml"
    config.write_text(
        "study: {n_trials: 3, max_seeds: 2, startup_seeds: 2, slots: 4, pruner: none, validate_seeds: 2}\n"
        f"trainer: {{env_id: {CORRIDOR}, max_episodes: 30}}\n"
        "search_space: {gamma: {type: float, low: 0.9, high: 0.99}}\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--storage", str(tmp_path / "optuna-journal.log"), "--tracking-uri", uri]
    assert main(["run", "--config", str(config), "--no-progress", *common]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "tracking failed" not in captured.out
    assert f"no GIF ({CORRIDOR} draws no rgb_array frames)" in captured.out

    study = load_existing_study("corridor", str(tmp_path / "optuna-journal.log"), uri)
    best = study.best_trial
    client = MlflowClient(tracking_uri=uri)
    logged = {a.path for a in client.list_artifacts(best.user_attrs["mlflow_run_id"])}
    assert any(name.startswith("agent_seed") for name in logged) and "greedy_episode.gif" not in logged

    assert main(["report", "--study-name", "corridor", "--out", str(tmp_path / "r.html"), *common]) == 0
    capsys.readouterr()
    assert main(["replay", "--study-name", "corridor", "--trial", str(best.number), *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("draws no rgb_array frames, so there is no GIF to write") and len(err.splitlines()) == 1
