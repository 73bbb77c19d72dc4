"""An MLflow experiment that another program made under the study's name is never adopted (issue 26, item 2)."""

from __future__ import annotations

import hashlib

from mlflow.tracking import MlflowClient

from tests.helpers import Stores

SWEEP = """
study: {n_trials: 1, max_seeds: 2, slots: 4, sampler: random, pruner: none, seed: 0, validate_seeds: 0}
trainer: {max_episodes: 5}
search_space:
  gamma: {type: float, low: 0.9, high: 0.99}
"""


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_foreign_experiment_with_the_studys_name_is_refused_and_nothing_is_written(tmp_path, capsys):
    stores = Stores(tmp_path)
    stores.config.write_text(SWEEP)
    client = MlflowClient(stores.tracking_uri)
    elsewhere = tmp_path / "other_program"
    experiment = client.create_experiment("shared", artifact_location=elsewhere.as_uri())
    client.create_run(experiment, run_name="theirs")
    before = _digest(tmp_path)
    capsys.readouterr()  # MLflow's own lines from creating the store above
    assert stores.run(study="shared") == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: MLflow experiment 'shared' (id {experiment}) was not made by dqn-sweep (no dqn_sweep.study tag): "
        "its runs and artifacts are another program's; use another --study-name or --tracking-uri"
    )
    assert _digest(tmp_path) == before and not elsewhere.exists()
    assert len(client.search_runs([experiment])) == 1


def test_an_experiment_the_sweep_made_is_found_again(tmp_path, capsys):
    stores = Stores(tmp_path)
    stores.config.write_text(SWEEP)
    assert stores.run(study="mine") == 0
    assert stores.run("--n-trials", "2", study="mine") == 0
    client = MlflowClient(stores.tracking_uri)
    assert len(client.search_experiments(filter_string="name = 'mine'")) == 1
