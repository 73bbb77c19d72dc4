"""Scale-out figures: trials/min with 1 and 2 local worker processes, and what a trial costs in the Optuna storage.

Run: `.venv/bin/python benchmarks/scaling.py [--n-trials 16] [--storage-trials 40]`. Part 1 runs the default
sweep (`sweeps/configs/default.yaml`, cut to --n-trials) into fresh stores (journal + SQLite MLflow) with one
`dqn-sweep run` process, then again with two processes sharing the study; wall time includes each process's start
(TensorFlow import, XLA compilation). Part 2 replays a trial's storage traffic without training (ask under the
budget lock, first heartbeat, 6 suggests, 100 reports with pruning checks, 5 user attributes, tell) against the
journal file and against a throwaway PostgreSQL on 127.0.0.1, and times the locked part apart: that part is
serialised across all workers, the rest runs in parallel. Part 3 puts the figures together on paper.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna

from sweeps.cli import DEFAULT_SWEEP
from sweeps.stores.budget import budget_lock
from sweeps.stores.heartbeats import Heartbeats, fail_stale_trials
from sweeps.stores.locations import open_optuna_storage
from sweeps.study.space import load_sweep

# The throwaway PostgreSQL lives with the tests (tests/servers.py), outside the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import PostgresCluster, find_pg_bin

REPORTS_PER_TRIAL = 100  # about the episodes a default-sweep trial reports (once per episode)


def workers_rate(n_workers: int, n_trials: int) -> tuple[float, float]:
    """(trials/min, wall seconds) for `n_workers` processes sharing one fresh study."""
    with tempfile.TemporaryDirectory() as folder:
        argv = [
            str(Path(sys.executable).parent / "dqn-sweep"),
            "run",
            "--config",
            str(DEFAULT_SWEEP),
            "--study-name",
            "scaling",
            "--n-trials",
            str(n_trials),
            "--storage",
            f"journal:{Path(folder) / 'optuna-journal.log'}",
            "--tracking-uri",
            f"sqlite:///{Path(folder) / 'mlflow.db'}",
            "--no-progress",
        ]
        started = time.perf_counter()
        procs = [subprocess.Popen(argv, cwd=folder, stdout=subprocess.DEVNULL) for _ in range(n_workers)]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - started
        if any(codes):
            raise SystemExit(f"a worker failed: exit codes {codes}")
    return n_trials / seconds * 60, seconds


def storage_cost(url: str, n_trials: int) -> tuple[float, float]:
    """(ms per trial in total, ms per trial holding the budget lock) for a trial's storage traffic."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = load_sweep(DEFAULT_SWEEP)
    storage = open_optuna_storage(url)
    study = optuna.create_study(storage=storage, study_name="cost", sampler=optuna.samplers.RandomSampler(seed=0))
    totals, locked = [], []
    with Heartbeats(storage, 60) as beats:
        for _ in range(n_trials):
            started = time.perf_counter()
            with budget_lock(url, storage, "cost"):
                fail_stale_trials(study)
                study.get_trials(deepcopy=False)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    trial = study.ask()
                beats.add(trial._trial_id)
            locked.append(time.perf_counter() - started)
            for spec in sweep.space:
                spec.suggest(trial)
            for step in range(1, REPORTS_PER_TRIAL + 1):
                trial.report(float(step), step)
                trial.should_prune()
            for key in ("worker", "tracking_tags", "mlflow_run_id", "env_steps", "wall_time_s"):
                trial.set_user_attr(key, "x")
            study.tell(trial, 1.0)
            beats.discard(trial._trial_id)
            totals.append(time.perf_counter() - started)
    return statistics.median(totals) * 1000, statistics.median(locked) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=16, help="trials of the default sweep per measurement")
    parser.add_argument("--storage-trials", type=int, default=40, help="simulated trials per storage")
    args = parser.parse_args()

    print(f"1) default sweep cut to {args.n_trials} trials x 3 seeds, fresh stores, wall time incl. process start")
    rates = {}
    for n in (1, 2):
        rate, seconds = workers_rate(n, args.n_trials)
        rates[n] = rate
        print(f"   {n} worker(s): {seconds:.1f} s, {rate:.1f} trials/min")
    print(f"   2 workers / 1 worker on this machine: {rates[2] / rates[1]:.2f}x")

    print(f"2) storage traffic of one trial ({REPORTS_PER_TRIAL} reports), median of {args.storage_trials} trials")
    costs = {}
    with tempfile.TemporaryDirectory() as folder:
        costs["journal"] = storage_cost(f"journal:{Path(folder) / 'j.log'}", args.storage_trials)
    if find_pg_bin() is None:
        print("   PostgreSQL binaries not found: PostgreSQL skipped")
    else:
        cluster = PostgresCluster().start()
        try:
            costs["postgresql"] = storage_cost(cluster.create_database("cost"), args.storage_trials)
        finally:
            cluster.stop()
    for name, (total, locked) in costs.items():
        print(f"   {name:<10}: {total:.1f} ms per trial, of which {locked:.1f} ms under the budget lock")

    print("3) on paper, M machines like this one with 1 worker each, PostgreSQL + an MLflow server elsewhere")
    # The measured trial ran on the journal; on PostgreSQL it pays PostgreSQL's storage traffic instead.
    pg_total, pg_locked = costs.get("postgresql", costs["journal"])
    trial_s = 60 / rates[1] - costs["journal"][0] / 1000 + pg_total / 1000
    print(f"   one worker: {trial_s:.2f} s per trial, of which {pg_total / 1000:.3f} s storage traffic")
    for machines in (1, 2, 4, 8, 16, 32):
        # Everything but the locked ask overlaps across machines; the lock caps the study at 60000/locked_ms.
        rate = min(machines * 60 / trial_s, 60_000 / max(pg_locked, 1e-9))
        print(f"   M={machines:>2}: ~{rate:,.0f} trials/min")


if __name__ == "__main__":
    main()
