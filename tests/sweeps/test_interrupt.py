"""Ctrl-C during a sweep: finished trials stay, running ones become FAIL (Optuna) and KILLED (MLflow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.stores.locations import open_optuna_storage
from sweeps.study.schema import recorded
from tests.helpers import sqlite_rows_read_only


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


AFTER_THE_LAST_TRIAL = """
study: {n_trials: 1, max_seeds: 2, slots: 4, sampler: random, pruner: none, seed: 0, validate_seeds: 400}
trainer: {max_episodes: 100}
search_space:
  gamma: {type: float, low: 0.9, high: 0.99}
"""


def test_sigterm_during_the_verdict_stops_it_and_says_so(tmp_path):
    """A 400-seed verdict follows the one trial: a SIGTERM once it has started ends the run with 143 and the parent
    run KILLED, and no verdict is recorded (it used to be acknowledged, then ignored, with exit 0)."""
    import threading

    from tests.helpers import Stores

    stores = Stores(tmp_path)
    stores.config.write_text(AFTER_THE_LAST_TRIAL)
    argv = [a for a in stores.argv() if a != "--no-progress"]  # the progress lines say when the verdict starts
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(chunk) for chunk in iter(lambda: proc.stderr.read1(), b"")])
    reader.start()
    deadline = time.monotonic() + 240
    while b"verdict: training" not in err and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # inside the verdict's training
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
        reader.join(timeout=10)
    assert proc.returncode == 143, err.decode()[-2000:]

    study = optuna.load_study(study_name="tiny", storage=open_optuna_storage(f"journal:{stores.journal}"))
    assert "verdict" not in study.user_attrs and recorded(study, "verdict") is None
    client = MlflowClient(stores.tracking_uri)
    experiment = client.get_experiment_by_name("tiny")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'study'")
    assert parent.info.status == "KILLED"


def test_sigterm_as_soon_as_the_parent_run_exists_ends_it_killed(tmp_path):
    """The stop handler is installed before the stores are opened: a SIGTERM that lands while the parent run is
    being (re)opened is obeyed at the first safe point (143, parent KILLED), never fatal with the parent RUNNING."""
    from tests.helpers import Stores

    stores = Stores(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", *stores.argv()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    db = tmp_path / "mlflow.db"
    deadline, parent = time.monotonic() + 240, []
    while not parent and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        parent = _study_runs_read_only(db)  # no MLflow client here: it would create the schema the run is creating
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert parent and proc.returncode == 143, err.decode()[-2000:]
    assert _study_runs_read_only(db) == [(parent[0][0], "KILLED")]
    study = optuna.load_study(study_name="tiny", storage=open_optuna_storage(f"journal:{stores.journal}"))
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def _study_runs_read_only(db) -> list[tuple[str, str]]:
    """(run id, status) of the study's parent runs."""
    return sqlite_rows_read_only(
        db,
        "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = 'dqn_sweep.role' AND t.value = 'study'",
    )


def _trial_runs_read_only(db) -> list[tuple[str, str, str]]:
    """(trial number, status, lifecycle stage) of every trial run."""
    return sqlite_rows_read_only(
        db,
        "SELECT t.value, r.status, r.lifecycle_stage FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = 'dqn_sweep.trial_number'",
    )


def test_a_stop_during_sync_ends_between_two_runs_and_the_next_sync_finishes(tmp_path):
    """`sync` re-creating 60 runs: a SIGTERM ends it between two runs (143, one line saying so, nothing RUNNING;
    it used to leave the run being made RUNNING); the next `sync` makes every missing run, one per trial."""
    from tests.analysis.builders import wide_study

    storage = f"journal:{tmp_path / 'optuna-journal.log'}"
    wide_study(open_optuna_storage(storage), name="wide", trials=60)
    db = tmp_path / "mlflow.db"
    argv = [sys.executable, "-m", "sweeps.cli", "sync", "--study", "wide", "--storage", storage]
    argv += ["--tracking-uri", f"sqlite:///{db}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while len(_trial_runs_read_only(db)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert err.decode().strip().endswith("sync stopped before it was done; run it again to finish")
    runs = _trial_runs_read_only(db)
    assert 2 <= len(runs) < 60 and not [run for run in runs if run[1] == "RUNNING"], runs
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    active = sorted(int(number) for number, _, stage in _trial_runs_read_only(db) if stage == "active")
    assert active == list(range(60))


def test_two_signals_during_one_long_c_call_force_the_stop():
    """CPython runs a signal's handler once the C call under way returns, once however many times the signal came
    meanwhile: a second Ctrl-C or SIGTERM during one compiled TensorFlow call used to be lost (the stop stayed
    graceful). The deliveries are counted on the wakeup fd: two force the stop."""
    import hashlib
    import threading

    from sweeps.run.shutdown import StopRequest

    data = bytes(1_000_000_000)  # hashing it takes ~1 s with the GIL released; no handler runs meanwhile

    def send_twice() -> None:
        for _ in range(2):
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)

    stop = StopRequest()
    sender = threading.Thread(target=send_twice)
    try:
        with pytest.raises(KeyboardInterrupt):
            sender.start()
            hashlib.sha256(data).digest()
            sender.join()
            time.sleep(0.5)  # the handler runs by now, with or without the C call
        assert stop.requested and stop.signum == signal.SIGTERM
    finally:
        sender.join()
        stop.release()
