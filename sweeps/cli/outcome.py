"""What `run` and `worker` print when a sweep ends, and their exit code."""

from __future__ import annotations

import sys
from typing import Any


def print_outcome(summary: Any, uri: str, storage: str) -> int:
    """The verdict, counts, speeds, tracking time and best trial of a finished sweep; 0, or 128 + the signal."""
    from sweeps.run.summary import describe_run, describe_seeds
    from sweeps.tracking.browse import browse_lines

    tracked = summary.tracking_seconds
    if summary.verdict is not None:
        print(summary.verdict.line)
    print(describe_run(summary))
    if summary.seed_runs:
        print(
            f"seeds: {summary.seed_runs} (trial, seed) runs, {summary.env_steps / summary.seconds:,.0f} agent-steps/s; "
            f"seeds per finished trial: {describe_seeds(summary.seeds_per_trial)}"
        )
    share = _share(tracked["trials"], summary.seconds)
    print(
        f"MLflow tracking: {tracked['trials']:.2f} s for the trials' runs ({share} of the sweep), "
        f"{tracked['setup']:.2f} s opening the store, {tracked['best']:.2f} s for the best agent"
    )
    if summary.best_number is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in summary.best_params.items())
        print(f"best trial {summary.best_number}: {summary.best_value:g} episodes to solve ({params})")
    for note in summary.notes:
        print(note)
    for line in browse_lines(uri, storage, summary.experiment_id):
        print(line)
    if summary.interrupted:
        print(
            "interrupted: finished trials were kept; running ones are FAIL in Optuna, KILLED in MLflow", file=sys.stderr
        )
        return 128 + int(summary.interrupted)  # 130 after Ctrl-C (SIGINT), 143 after SIGTERM
    return 0


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "n/a"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
