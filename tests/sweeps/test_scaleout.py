"""Several worker processes on one study, on real servers: PostgreSQL + `mlflow server`, or the journal file.

Each test starts real processes (`python -m sweeps.cli`) and checks the stores through Optuna's and MLflow's own
clients: an exact budget, no duplicates, crash recovery after SIGKILL, a graceful SIGINT, no leaked password.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.cli import main
from sweeps.stores.locations import open_optuna_storage
from sweeps.stores.optuna_adapter import study_system_attrs
from tests.helpers import FAST_LIVENESS, WORKER_SWEEP

pytestmark = pytest.mark.slow
N_TRIALS = 8
DEADLINE_S = 420  # generous for 2 loaded cores; the tests normally end in well under a minute each


def _spawn(*argv: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        command = [sys.executable, "-m", "sweeps.cli", *argv]
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _study(storage: str, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=open_optuna_storage(storage, writable=False))
    except KeyError:
        return None


def _wait_until(condition, what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _finish(procs: list[subprocess.Popen], timeout: float = DEADLINE_S) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


def _trial_runs(tracking_uri: str, study: str) -> dict[int, object]:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], "tags.`dqn_sweep.role` = 'trial'", max_results=1000)
    by_number: dict[int, object] = {}
    for run in runs:
        number = int(run.data.tags["dqn_sweep.trial_number"])
        assert number not in by_number, f"two MLflow runs for trial {number}"
        by_number[number] = run
    return by_number


def _check_exact_budget(storage: str, tracking_uri: str, name: str) -> optuna.Study:
    study = _study(storage, name)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(len(trials)))
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == N_TRIALS, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    runs = _trial_runs(tracking_uri, name)
    for trial in finished:
        run = runs[trial.number]
        assert run.info.status == "FINISHED"
        assert float(run.data.params["gamma"]) == pytest.approx(trial.params["gamma"])
        assert run.data.params["warmup"] == str(trial.params["warmup"]) and run.data.params["seeds"] == "0,1"
        assert run.data.metrics["episodes_to_solve"] == trial.value
        assert run.data.tags["dqn_sweep.state"] == trial.state.name
    return study


def _assert_no_secret(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


def _mlflow_text(tracking_uri: str, name: str) -> str:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return json.dumps([{"params": r.data.params, "tags": r.data.tags} for r in runs])


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_four_workers_share_the_budget_exactly(backend, postgres, mlflow_server, tmp_path):
    config = tmp_path / "workers.yaml"
    config.write_text(WORKER_SWEEP)
    name = f"four-{backend}"
    storage = postgres.create_database("optuna_four") if backend == "postgresql" else f"journal:{tmp_path / 'j.log'}"
    stores = ["--storage", storage, "--tracking-uri", mlflow_server.uri, "--no-progress", *FAST_LIVENESS]
    run = ["run", "--config", str(config), "--study-name", name, *stores]
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    if backend == "journal":  # four `run`s racing to create the study
        procs = [_spawn(*run, log=log) for log in logs]
    else:  # one `run` creates it, three `worker`s join with nothing but the stores
        procs = [_spawn(*run, log=logs[0])]
        _wait_until(lambda: _study(storage, name) is not None, "the study to exist")
        procs += [_spawn("worker", "--study-name", name, *stores, log=log) for log in logs[1:]]
    codes = _finish(procs)
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0, 0, 0], outputs
    study = _check_exact_budget(storage, mlflow_server.uri, name)
    assert len({t.user_attrs["worker"] for t in study.trials}) >= 2, "the work was not shared"
    if backend == "postgresql":
        tracked = _mlflow_text(mlflow_server.uri, name)
        attributes = json.dumps([study.user_attrs, study_system_attrs(study)])  # the command line is in the record
        _assert_no_secret(postgres.password, *outputs, attributes, tracked)


def test_sigkill_and_sigint_mid_trial_lose_nothing(postgres, mlflow_server, tmp_path, capsys):
    """Worker A is SIGKILLed mid-trial, worker B gets Ctrl-C; `repair` and a third worker finish the study."""
    config = tmp_path / "workers.yaml"
    config.write_text(WORKER_SWEEP)
    name = "crash"
    storage = postgres.create_database("optuna_crash")
    stores = ["--storage", storage, "--tracking-uri", mlflow_server.uri]
    run = ["run", "--config", str(config), "--study-name", name, "--no-progress", *stores, *FAST_LIVENESS]
    a = _spawn(*run, log=tmp_path / "a.log")
    _wait_until(lambda: _study(storage, name) is not None, "the study to exist")
    b = _spawn("worker", "--study-name", name, "--no-progress", *stores, *FAST_LIVENESS, log=tmp_path / "b.log")

    def running_of(proc: subprocess.Popen) -> optuna.trial.FrozenTrial | None:
        study = _study(storage, name)
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if finished and trial.user_attrs.get("worker", "").endswith(f":{proc.pid}"):
                return trial
        return None

    def freeze_mid_trial(proc: subprocess.Popen) -> optuna.trial.FrozenTrial | None:
        """SIGSTOP first, so the trial seen running is still running when SIGKILL arrives."""
        proc.send_signal(signal.SIGSTOP)
        trial = running_of(proc)
        if trial is None:
            proc.send_signal(signal.SIGCONT)
        return trial

    _wait_until(lambda: running_of(a) is not None, "worker A to run a trial after a first one finished")
    killed = None
    for _ in range(40):
        killed = freeze_mid_trial(a)
        if killed is not None:
            break
        time.sleep(0.2)
    assert killed is not None, "worker A was never caught mid-trial"
    a.send_signal(signal.SIGKILL)
    assert a.wait(timeout=30) == -signal.SIGKILL
    _wait_until(lambda: running_of(b) is not None, "worker B to run a trial")
    caught = None
    for _ in range(40):  # frozen while seen mid-trial, so the trial is still running when the Ctrl-C lands
        caught = freeze_mid_trial(b)
        if caught is not None:
            break
        time.sleep(0.2)
    assert caught is not None, "worker B was never caught mid-trial"
    b.send_signal(signal.SIGINT)
    b.send_signal(signal.SIGCONT)
    assert b.wait(timeout=120) == 130, (tmp_path / "b.log").read_text()
    assert "interrupted" in (tmp_path / "b.log").read_text()

    time.sleep(7)  # past the grace period: A's trial is now stale
    assert main(["repair", "--study-name", name, *stores, *FAST_LIVENESS]) == 0
    assert "runs closed" in capsys.readouterr().out
    study = _study(storage, name)
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert study.trials[killed.number].state == TrialState.FAIL
    runs = _trial_runs(mlflow_server.uri, name)
    assert runs[killed.number].info.status in ("FAILED", "KILLED")
    failed = [t for t in study.trials if t.state == TrialState.FAIL]

    def of(proc: subprocess.Popen) -> list[optuna.trial.FrozenTrial]:
        return [t for t in failed if t.user_attrs.get("worker", "").endswith(f":{proc.pid}")]

    # A streaming worker may have several trials running at once: every one of A's was failed as stale (and is
    # queued again), every one of B's was interrupted (KILLED in MLflow, not retried).
    assert killed.number in {t.number for t in of(a)} and len(of(a)) + len(of(b)) == len(failed)
    for trial in of(a):
        assert runs[trial.number].info.status in ("FAILED", "KILLED")
        assert [t.params for t in study.trials if t.system_attrs.get("failed_trial") == trial.number] == [trial.params]
    assert of(b) and all(runs[t.number].info.status == "KILLED" for t in of(b))
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params  # its work is queued again

    c = _spawn("worker", "--study-name", name, "--no-progress", *stores, *FAST_LIVENESS, log=tmp_path / "c.log")
    assert _finish([c]) == [0], (tmp_path / "c.log").read_text()
    study = _check_exact_budget(storage, mlflow_server.uri, name)
    redone = study.trials[retry[0].number]
    assert redone.state == TrialState.COMPLETE and redone.params == killed.params
    # Part-way through its seeds when its worker died: the retry trains every seed again from seed 0, and a seed
    # the dead worker had finished comes out the same.
    assert set(redone.intermediate_values) == {0, 1}
    for seed, value in study.trials[killed.number].intermediate_values.items():
        assert redone.intermediate_values[seed] == value
    assert not [r for r in _trial_runs(mlflow_server.uri, name).values() if r.info.status == "RUNNING"]


def test_tracking_outage_keeps_every_trial_and_sync_restores_the_runs(tmp_path, capsys):
    """The MLflow server stops mid-sweep: Optuna keeps every trial; after a restart `sync` re-creates the runs."""
    from tests.servers import MlflowServer

    config = tmp_path / "workers.yaml"
    config.write_text(WORKER_SWEEP)
    server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts").start()
    try:
        storage = f"journal:{tmp_path / 'j.log'}"
        stores = ["--storage", storage, "--tracking-uri", server.uri]
        log = tmp_path / "worker.log"
        proc = _spawn("run", "--config", str(config), "--study-name", "outage", "--no-progress", *stores, log=log)

        def finished() -> int:
            study = _study(storage, "outage")
            return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) if study else 0

        _wait_until(lambda: finished() >= 2, "two trials before the outage")
        server.stop()
        during = finished()
        _wait_until(lambda: finished() >= during + 2 or proc.poll() is not None, "two trials during the outage")
        server.start()
        assert _finish([proc]) == [0], log.read_text()
        output = log.read_text()
        assert "warning: MLflow tracking at" in output and "dqn-sweep sync --study-name outage" in output
        assert "Traceback" not in output

        import re
        import shlex

        hint = re.findall(r"`(dqn-sweep sync [^`]*)`", output)[-1]  # pasted as printed: it names both stores
        assert main(shlex.split(hint)[1:]) == 0
        out = capsys.readouterr().out
        assert "runs re-created" in out and " 0 runs re-created" not in out
        _check_exact_budget(storage, server.uri, "outage")
        runs = _trial_runs(server.uri, "outage")
        assert not [r for r in runs.values() if r.info.status == "RUNNING"]
        synced = [r for r in runs.values() if r.data.tags.get("dqn_sweep.synced") == "true"]
        assert synced and all("per_seed/seed_0_episodes_to_solve" in r.data.metrics for r in synced)
        assert main(["sync", "--study-name", "outage", *stores]) == 0  # idempotent
        assert " 0 runs re-created" in capsys.readouterr().out
    finally:
        server.stop()
