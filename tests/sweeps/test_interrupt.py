"""Ctrl-C during a sweep: finished trials stay, running ones become FAIL (Optuna) and KILLED (MLflow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.stores.locations import open_optuna_storage


def test_sigint_keeps_finished_trials_and_closes_running_ones(tmp_path):
    from tests.helpers import Stores

    stores = Stores(tmp_path)
    argv = stores.argv("--n-trials", "40", "--slots", "4")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 240
    storage = None
    while time.monotonic() < deadline:  # wait until at least one trial has finished
        time.sleep(1)
        if stores.journal.exists():
            storage = storage or open_optuna_storage(f"journal:{stores.journal}")
            try:
                study = optuna.load_study(study_name="tiny", storage=storage)
            except KeyError:
                continue
            if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
                break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"interrupted" in err

    study = optuna.load_study(study_name="tiny", storage=open_optuna_storage(f"journal:{stores.journal}"))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert TrialState.RUNNING not in states
    assert TrialState.FAIL in states
    kept = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 1 <= len(kept) < 40

    client = MlflowClient(stores.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    by_number = {int(r.data.tags["dqn_sweep.trial_number"]): r for r in runs if "dqn_sweep.trial_number" in r.data.tags}
    for trial in study.trials:
        if trial.state == TrialState.FAIL and trial.number in by_number:
            assert by_number[trial.number].info.status == "KILLED"
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            assert by_number[trial.number].info.status == "FINISHED"
