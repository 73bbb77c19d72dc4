"""Stores stay consistent when things go wrong: a cut-off journal, a used-up grid, SIGTERM, a tracking error, and
secrets in storage URLs. Every test uses real stores (journal, SQLite, PostgreSQL, MLflow) and ends by checking
that no trial and no MLflow run is left RUNNING.
"""

from __future__ import annotations

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

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

GRID_SWEEP = """
study: {n_trials: 6, max_seeds: 2, slots: 4, sampler: grid, pruner: none, seed: 3, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.99, step: 0.09}
  warmup: {type: int, low: 0, high: 10, step: 10}
"""

SMALL_SWEEP = """
study: {n_trials: 3, max_seeds: 2, slots: 2, sampler: random, pruner: none, seed: 5, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
"""


def _study(journal: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_optuna_storage(f"journal:{journal}", writable=False))


def _runs(tracking_uri: str, name: str) -> list:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []


def _assert_nothing_running(journal: Path, tracking_uri: str, name: str) -> None:
    study = _study(journal, name)
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert not [r.info.run_name for r in _runs(tracking_uri, name) if r.info.status == "RUNNING"]


def _parent_status(tracking_uri: str, name: str) -> str:
    (parent,) = [r for r in _runs(tracking_uri, name) if r.data.tags.get("dqn_sweep.role") == "study"]
    return parent.info.status


def _argv(config: Path, root: Path, name: str, *extra: str) -> list[str]:
    return [
        "run",
        "--config",
        str(config),
        "--study-name",
        name,
        "--storage",
        f"journal:{root / 'j.log'}",
        "--tracking-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--no-progress",
        *extra,
    ]


def test_truncated_journal_is_refused_repaired_and_resumed(tiny_sweep, tmp_path, capsys):
    journal = tmp_path / "j.log"
    cut = tiny_sweep.journal.read_bytes()[:-50]  # a crash or a full disk in the middle of the last write
    journal.write_bytes(cut)
    argv = _argv(tiny_sweep.config, tmp_path, "tiny", "--heartbeat-interval", "1", "--grace-period", "2")

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ends in a partial line" in err and f"dqn-sweep repair --journal {journal}" in err
    assert len(err.strip().splitlines()) == 1
    assert journal.read_bytes() == cut
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.log"]  # no lock file, no MLflow store

    assert main(["repair", "--journal", str(journal)]) == 0
    assert "cut a partial last line" in capsys.readouterr().out
    (backup,) = tmp_path.glob("j.log.*.bak")
    assert backup.read_bytes() == cut
    assert journal.read_bytes() == cut[: cut.rindex(b"\n") + 1]
    assert main(["repair", "--journal", str(journal)]) == 0
    assert "nothing to repair" in capsys.readouterr().out

    assert main(argv) == 0  # resumed: a trial whose end was cut off is failed, retried, and the budget is exact
    study = _study(journal, "tiny")
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == 6
    _assert_nothing_running(journal, f"sqlite:///{tmp_path / 'mlflow.db'}", "tiny")


def test_a_used_up_grid_ends_the_sweep_cleanly_and_readers_leave_the_parent_run_alone(tmp_path, capsys):
    config = tmp_path / "grid.yaml"
    config.write_text(GRID_SWEEP)
    journal, tracking = tmp_path / "j.log", f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(_argv(config, tmp_path, "grid")) == 0
    out = capsys.readouterr().out
    assert "the grid of 4 points is used up" in out
    study = _study(journal, "grid")
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    assert len(finished) == 4  # the four grid points, the book's baseline (gamma 0.99, warmup 10) one of them
    assert {(t.params["gamma"], t.params["warmup"]) for t in finished} == {(0.9, 0), (0.9, 10), (0.99, 0), (0.99, 10)}
    assert {t.system_attrs["grid_id"] for t in finished} == {0, 1, 2, 3}
    _assert_nothing_running(journal, tracking, "grid")
    assert _parent_status(tracking, "grid") == "FINISHED"

    assert main(_argv(config, tmp_path, "grid")) == 0  # a rerun asks nothing more and ends cleanly again
    assert len(_study(journal, "grid").get_trials(deepcopy=False)) == 4
    _assert_nothing_running(journal, tracking, "grid")

    stores = ["--study-name", "grid", "--storage", f"journal:{journal}", "--tracking-uri", tracking]
    for command in (["repair"], ["sync"], ["replay", "--trial", "1", "--out", str(tmp_path / "t1.gif")]):
        assert main([*command, *stores]) == 0, command
        assert _parent_status(tracking, "grid") == "FINISHED", command
    _assert_nothing_running(journal, tracking, "grid")


def test_sigterm_stops_like_ctrl_c_and_the_sweep_resumes_to_the_exact_budget(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_SWEEP.replace("n_trials: 3", "n_trials: 40"))
    journal, tracking = tmp_path / "j.log", f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", *_argv(config, tmp_path, "term")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait until a trial has finished
        time.sleep(1)
        try:
            if _study(journal, "term").get_trials(deepcopy=False, states=FINISHED):
                break
        except (KeyError, Exception):
            continue
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert b"SIGTERM: stopping at the next safe point" in err
    _assert_nothing_running(journal, tracking, "term")
    kept = len(_study(journal, "term").get_trials(deepcopy=False, states=FINISHED))
    assert 1 <= kept < 40

    assert main(_argv(config, tmp_path, "term", "--n-trials", str(kept + 2))) == 0
    study = _study(journal, "term")
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == kept + 2
    _assert_nothing_running(journal, tracking, "term")
    numbers = [int(r.data.tags["dqn_sweep.trial_number"]) for r in _runs(tracking, "term") if r.info.run_name != "term"]
    assert len(numbers) == len(set(numbers))  # one run per trial, no duplicates


def test_a_tracking_error_on_a_trial_fails_its_run_with_one_warning(tmp_path, capsys):
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_SWEEP)
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "mlruns" / "broken").write_text("a file where the artifact folder should be")
    journal, tracking = tmp_path / "j.log", f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(_argv(config, tmp_path, "broken")) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.startswith("warning:")]) == 1, err
    assert "Traceback" not in err
    assert len(_study(journal, "broken").get_trials(deepcopy=False, states=FINISHED)) == 3
    _assert_nothing_running(journal, tracking, "broken")
    statuses = {r.info.run_name: r.info.status for r in _runs(tracking, "broken")}
    assert statuses["trial-0000"] == "FAILED"
    assert statuses["broken"] == "FINISHED"


def test_a_writer_never_appends_onto_a_line_another_process_left_cut_off(tmp_path, capsys):
    from sweeps.stores.journal import JournalPartialLine

    journal = tmp_path / "j.log"
    study = optuna.create_study(study_name="s", storage=open_optuna_storage(f"journal:{journal}"))
    with journal.open("ab") as handle:  # another worker ran out of disk in the middle of its write
        handle.write(b'{"op_code": 5, "worker_id": "x", "study_')
    before = journal.read_bytes()
    with pytest.raises(JournalPartialLine, match="repair --journal"):
        study.set_user_attr("after", 1)
    assert journal.read_bytes() == before

    assert main(["repair", "--journal", str(journal)]) == 0
    capsys.readouterr()
    study.set_user_attr("after", 1)
    assert _study(journal, "s").user_attrs == {"after": 1}


def test_a_study_whose_creator_died_half_way_is_completed_by_the_next_run(tmp_path, capsys):
    from sweeps.study.schema import ATTR_BASE_CONFIG

    config = tmp_path / "small.yaml"
    config.write_text(SMALL_SWEEP.replace("n_trials: 3", "n_trials: 1"))
    journal = tmp_path / "j.log"
    half = optuna.create_study(study_name="half", storage=open_optuna_storage(f"journal:{journal}"))
    half.set_user_attr(ATTR_BASE_CONFIG, {"max_episodes": 30})  # the creator died here (once: a MemoryError)
    argv = _argv(config, tmp_path, "half")
    worker = ["worker", *argv[argv.index("--study-name") :]]
    assert main(worker) == 2  # a worker has no sweep file to finish it with
    assert "join it with `dqn-sweep run --config" in capsys.readouterr().err
    assert main(argv) == 0
    study = _study(journal, "half")
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == 1
    assert study.trials[0].user_attrs["baseline"] == "book"
    _assert_nothing_running(journal, f"sqlite:///{tmp_path / 'mlflow.db'}", "half")


def test_after_kill_9_the_same_command_closes_the_dead_workers_runs_and_says_it_waits(tmp_path, capsys):
    """A run SIGKILLed mid-trial, then the same command again (its trials were not yet stale when it started):
    it says it waits for the grace period, retries the dead trials and closes their MLflow runs (they stayed
    RUNNING: the stale trials were failed in Optuna only)."""
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_SWEEP.replace("n_trials: 3", "n_trials: 6"))
    journal, tracking = tmp_path / "j.log", f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [*_argv(config, tmp_path, "killed"), "--heartbeat-interval", "1", "--grace-period", "20"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline, dead = time.monotonic() + 240, []
    while time.monotonic() < deadline and not dead:  # frozen while seen mid-trial, after a first trial finished
        time.sleep(0.3)
        proc.send_signal(signal.SIGSTOP)
        try:
            study = _study(journal, "killed")
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if study.get_trials(deepcopy=False, states=FINISHED):
                dead = [t.number for t in running if t.user_attrs.get("mlflow_run_id")]
        except Exception:
            pass
        if not dead:
            proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert dead, "the run was never caught mid-trial"

    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "trial(s) running in other processes" in err and "--grace-period (20 s)" in err
    study = _study(journal, "killed")
    assert all(study.trials[n].state == TrialState.FAIL for n in dead)
    _assert_nothing_running(journal, tracking, "killed")
