"""The default sweep, timed: `sweeps/configs/default.yaml` (32 trials x 3 seeds) into fresh stores in a temp dir.

Run: `.venv/bin/python benchmarks/sweep.py [--n-trials 32]`. Prints wall time, trials/min and MLflow tracking
overhead (the trials' runs vs the whole sweep; opening a new store and the best agent's GIF are shown apart).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sweeps.cli import DEFAULT_SWEEP
from sweeps.runner import SweepOptions, describe_counts, run_sweep
from sweeps.space import load_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=None, help="override the file's n_trials")
    args = parser.parse_args()
    sweep = load_sweep(DEFAULT_SWEEP)
    study = sweep.study
    with tempfile.TemporaryDirectory() as folder:
        options = SweepOptions(
            sweep=sweep,
            study_name="benchmark",
            n_trials=args.n_trials or study["n_trials"],
            n_seeds=study["n_seeds"],
            trials_per_batch=study["trials_per_batch"],
            sampler=study["sampler"],
            pruner=study["pruner"],
            seed=study["seed"],
            storage=f"journal:{Path(folder) / 'optuna-journal.log'}",
            tracking_uri=f"sqlite:///{Path(folder) / 'mlflow.db'}",
            progress=False,
        )
        started = time.perf_counter()
        summary = run_sweep(options)
        seconds = time.perf_counter() - started
    tracked = summary.tracking_seconds
    print(
        f"default sweep: {options.n_trials} trials x {options.n_seeds} seeds, batches of {options.trials_per_batch}, "
        f"{options.sampler} + {options.pruner} pruner"
    )
    print(f"  {describe_counts(summary.counts)}; best trial {summary.best_number}: {summary.best_value}")
    print(f"  wall time {seconds:.1f} s (target <= 180 s), {summary.new_trials / seconds * 60:.1f} trials/min")
    print(
        f"  MLflow, trials' runs: {tracked['trials']:.2f} s = {100 * tracked['trials'] / seconds:.1f}% of the sweep, "
        f"{100 * tracked['trials'] / max(summary.trial_seconds, 1e-9):.1f}% of the summed trial wall time"
    )
    print(f"  MLflow, creating the store: {tracked['setup']:.2f} s; best agent + GIF: {tracked['best']:.2f} s")


if __name__ == "__main__":
    main()
