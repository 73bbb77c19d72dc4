"""A full disk, simulated without mounting anything: the sweep runs in a child process whose file-size limit
(RLIMIT_FSIZE) makes every write past a given size fail with EFBIG, as ENOSPC would. For the journal and for
mlflow.db, at start and mid-sweep: one line, nothing left RUNNING after the resume, the exact budget, no duplicates.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.cli import main
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.schema import recorded

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SWEEP = """
study: {n_trials: 8, max_seeds: 2, slots: 2, sampler: random, pruner: none, seed: 5, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
"""
FAST_LIVENESS = ["--heartbeat-interval", "1", "--grace-period", "2"]


def _limited(argv: list[str], max_file_bytes: int) -> subprocess.CompletedProcess:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-m", "sweeps.cli", *argv], preexec_fn=limit, capture_output=True, text=True, timeout=300
    )


def _study(journal: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_optuna_storage(f"journal:{journal}", writable=False))


def _check_nothing_running(tracking: str, name: str) -> None:
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=1000)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]


def _check_consistent(journal: Path, tracking: str, name: str, n_finished: int) -> None:
    """Exact budget, nothing RUNNING anywhere, exactly one MLflow run per finished trial."""
    study = _study(journal, name)
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == n_finished
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=1000)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    numbers = [int(r.data.tags["dqn_sweep.trial_number"]) for r in runs if "dqn_sweep.trial_number" in r.data.tags]
    assert len(numbers) == len(set(numbers))
    assert {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)} <= set(numbers)


def test_journal_full_mid_sweep_and_at_start(mlflow_server, tmp_path, capsys):
    config, journal = tmp_path / "sweep.yaml", tmp_path / "j.log"
    config.write_text(SWEEP)
    common = ["--storage", f"journal:{journal}", "--tracking-uri", mlflow_server.uri, *FAST_LIVENESS]
    argv = ["run", "--config", str(config), "--study-name", "jfull", "--no-progress", *common]

    done = _limited(argv, 9_000)  # the journal reaches 9 kB after a few trials (18 kB for all 8)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: disk full"), done.stderr[-2000:]
    kept = len(_study(journal, "jfull").get_trials(deepcopy=False, states=FINISHED))
    assert 1 <= kept < 8
    _check_nothing_running(mlflow_server.uri, "jfull")  # the failing process closed what it opened

    if main(argv) == 2:  # the failed write may have left a partial line: refused until repaired
        assert "repair --journal" in capsys.readouterr().err
        assert main(["repair", "--journal", str(journal)]) == 0
        assert main(argv) == 0
    _check_consistent(journal, mlflow_server.uri, "jfull", 8)

    # At start: not one byte fits. One line, the journal unchanged (the refused budget is not recorded).
    before = journal.read_bytes()
    done = _limited([*argv, "--n-trials", "10"], len(before))
    assert done.returncode == 2 and "error: disk full" in done.stderr, done.stderr[-2000:]
    assert journal.read_bytes() == before
    assert recorded(_study(journal, "jfull"), "sweep_options")["n_trials"] == 8
    assert main([*argv, "--n-trials", "9"]) == 0
    _check_consistent(journal, mlflow_server.uri, "jfull", 9)


def test_mlflow_db_full_mid_sweep_and_at_start(tmp_path, capsys):
    config, journal, db = tmp_path / "sweep.yaml", tmp_path / "j.log", tmp_path / "mlflow.db"
    config.write_text(SWEEP.replace("n_trials: 8", "n_trials: 6"))
    tracking = f"sqlite:///{db}"
    MlflowClient(tracking).search_experiments()  # the schema, written with room to spare
    common = ["--storage", f"journal:{journal}", "--tracking-uri", tracking, *FAST_LIVENESS]
    argv = ["run", "--config", str(config), "--study-name", "dbfull", "--no-progress", *common]

    done = _limited(argv, db.stat().st_size + 40_000)  # room for the study and a trial or two
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "warning: MLflow tracking" in done.stderr
    assert len(_study(journal, "dbfull").get_trials(deepcopy=False, states=FINISHED)) == 6  # Optuna went on

    assert main(argv) == 0  # space freed: the rerun closes what was left RUNNING
    assert main(["sync", "--study-name", "dbfull", *common]) == 0  # and sync re-creates the runs never logged
    capsys.readouterr()
    _check_consistent(journal, tracking, "dbfull", 6)

    # At start, mlflow.db cannot grow by a byte. An existing study: rows are updated in place, so the sweep starts
    # and goes on in Optuna alone, one warning line; a new study: its experiment cannot be created, one error line.
    done = _limited([*argv, "--n-trials", "7"], db.stat().st_size)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len([line for line in done.stderr.splitlines() if line.startswith("warning:")]) == 1, done.stderr
    fresh = [*argv[:4], "dbfull2", *argv[5:], "--n-trials", "2"]
    done = _limited(fresh, db.stat().st_size)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot use MLflow tracking store" in lines[0], done.stderr[-2000:]
    assert recorded(_study(journal, "dbfull2"), "sweep_options") is None  # the refused budget was not recorded

    for command in ([*argv, "--n-trials", "7"], fresh, ["sync", "--study-name", "dbfull", *common]):
        assert main(command) == 0, command
    capsys.readouterr()
    _check_consistent(journal, tracking, "dbfull", 7)
    _check_consistent(journal, tracking, "dbfull2", 2)
