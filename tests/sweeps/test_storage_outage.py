"""The Optuna database going away mid-sweep (issue 26, item 8): its own throwaway PostgreSQL cluster is stopped
while a sweep runs, then started again. The sweep ends in one line with exit 2 (it ended in a StorageInternalError
traceback, exit 1, with trials and runs RUNNING), every MLflow run it had open is closed, and the same command
run again once the server is back finishes the budget exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.stores.locations import open_optuna_storage
from tests.helpers import FAST_LIVENESS, sqlite_rows_read_only

pytestmark = pytest.mark.slow

SWEEP = """
study: {n_trials: 40, max_seeds: 2, slots: 2, sampler: random, pruner: none, seed: 5, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
"""


@pytest.fixture
def cluster():
    from tests.servers import PostgresCluster, find_pg_bin

    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found; .ci/run installs them")
    cluster = PostgresCluster(password="outage-pw").start()
    yield cluster
    cluster.stop()


def _runs(db) -> list[tuple[str, str]]:
    """(role, status) of every run."""
    return sqlite_rows_read_only(
        db,
        "SELECT t.value, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid WHERE t.key = 'dqn_sweep.role'",
    )


def test_a_postgresql_outage_mid_sweep_is_one_line_and_closes_every_run(cluster, tmp_path):
    storage = cluster.create_database("optuna")
    config, db = tmp_path / "sweep.yaml", tmp_path / "mlflow.db"
    config.write_text(SWEEP)
    argv = [sys.executable, "-m", "sweeps.cli", "run", "--config", str(config), "--study-name", "outage"]
    argv += ["--storage", storage, "--tracking-uri", f"sqlite:///{db}", "--no-progress", *FAST_LIVENESS]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(role == "trial" and status == "FINISHED" for role, status in _runs(db)) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before the outage"
    cluster.halt()
    try:
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    stderr = err.decode()
    assert proc.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "the Optuna storage" in line and "failed mid-sweep" in line and "outage-pw" not in line, line
    runs = _runs(db)
    assert ("study", "FAILED") in runs and not [run for run in runs if run[1] == "RUNNING"], runs

    cluster.resume()
    study = optuna.load_study(study_name="outage", storage=open_optuna_storage(storage))
    kept = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    assert 2 <= kept < 40
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="outage", storage=open_optuna_storage(storage))
    assert len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))) == 40
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert not [run for run in _runs(db) if run[1] == "RUNNING"]
