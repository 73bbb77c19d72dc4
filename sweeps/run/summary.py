"""What a finished `run` or `worker` reports: the study's counts, this process's share, the best trial and the
verdict, and how the command line phrases them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


@dataclass
class SweepSummary:
    study_name: str
    counts: dict[str, int]
    new_trials: int
    seconds: float
    tracking_seconds: dict[str, float]
    trial_seconds: float  # summed wall time of the trials finished in this run
    best_number: int | None
    best_value: float | None
    best_params: dict[str, Any]
    experiment_id: str = ""
    interrupted: int = 0  # the signal that stopped the sweep (SIGINT or SIGTERM), 0 if none
    notes: list[str] = field(default_factory=list)
    seed_runs: int = 0  # (trial, seed) agents this process finished
    env_steps: int = 0  # their environment steps
    seeds_per_trial: dict[int, int] = field(default_factory=dict)  # finished trials of this process
    verdict: Any = None  # verdict_record.Verdict, when `run` computed or found one


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, in the plural unless one: "1 trial", "2 trials" (the summary line is read by people)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe_run(summary: SweepSummary) -> str:
    """The study line of a finished `run` or `worker`: the study's counts, then this process's share and speed."""
    rate = trials_per_minute(summary.new_trials, summary.seconds)
    return (
        f"study '{summary.study_name}': {describe_counts(summary.counts)}; this run finished "
        f"{plural(summary.new_trials, 'trial')} in {summary.seconds:.1f} s ({rate:.1f} trials/min)"
    )


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v or k in ("COMPLETE", "PRUNED"))


def describe_seeds(seeds_per_trial: dict[int, int]) -> str:
    """e.g. "2 x 4, 1 x 7, 5 x 16": how many trials stopped at each seed count (pruned early, or complete)."""
    counts: dict[int, int] = {}
    for n in seeds_per_trial.values():
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"{trials} x {seeds}" for seeds, trials in sorted(counts.items())) or "none"


def trials_per_minute(n: int, seconds: float) -> float:
    return n / seconds * 60 if seconds > 0 else 0.0


def study_counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state name, the states a summary shows."""
    return {state.name: len(study.get_trials(deepcopy=False, states=(state,))) for state in COUNTED}
