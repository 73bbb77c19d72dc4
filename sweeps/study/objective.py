"""The Optuna objective, one seed at a time: a trial's value is the median over its seeds of the episodes to five
consecutive successes, and every seed's result is reported the moment it finishes.

A trial trains seeds 0, 1, 2, ... (the same seeds for every trial, so comparisons are paired). Each finished seed is
reported to Optuna as the intermediate value at step = seed, the contract of `optuna.pruners.WilcoxonPruner`, which
prunes the trial once a paired signed-rank test over common seeds says it is worse than the best. A trial that
finishes all `max_seeds` seeds completes with the median; a pruned trial keeps the values of the seeds it finished,
and its value as Optuna's tools show it is their median too (not Optuna's default, its last seed's value).
A seed stops early once five successes can no longer be reached within max_episodes (its value is then censored
at max_episodes + 1, whatever more episodes would show). A trial that another worker declared dead (its
heartbeats were late) refuses updates; it is dropped here as FAIL, since its retry is already queued.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from dqn_core.config import TrainConfig
from dqn_core.results import EpisodeStats
from sweeps.stores.optuna_adapter import tell_pruned
from sweeps.study.schema import TRIAL_CENSORED, TRIAL_ENV_STEPS, TRIAL_PER_SEED, TRIAL_WALL_TIME
from sweeps.study.stats import aggregate


def censored_value(episodes_to_solve: int | None, max_episodes: int) -> int:
    """An unsolved seed counts as max_episodes + 1: worse than any solve, and visibly censored."""
    return episodes_to_solve if episodes_to_solve is not None else max_episodes + 1


@dataclass
class SeedCurve:
    """One seed's per-episode record while it trains."""

    steps: list[int] = field(default_factory=list)
    epsilon: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    episodes_to_solve: int | None = None
    unsolvable: bool = False  # five successes can no longer be reached within max_episodes

    def record(self, stats: EpisodeStats, config: TrainConfig) -> bool:
        """Append one episode; False once more episodes cannot change this seed's value."""
        self.steps.append(stats.steps)
        self.epsilon.append(stats.epsilon)
        self.loss.append(stats.mean_loss)
        needed = config.successes_to_solve - stats.consecutive_successes
        if needed <= 0:
            self.episodes_to_solve = stats.episode
        elif stats.episode + needed > config.max_episodes:
            self.unsolvable = True
        return not self.unsolvable


@dataclass
class TrialRun:
    """One trial while its seeds train; `state` becomes COMPLETE, PRUNED or FAIL when it is concluded."""

    trial: optuna.Trial
    config: TrainConfig
    max_seeds: int
    baseline: bool = False
    run_id: str | None = None
    curves: dict[int, SeedCurve] = field(default_factory=dict)  # every seed started, in order
    values: dict[int, int] = field(default_factory=dict)  # every seed finished: episodes to solve (censored)
    in_flight: set[int] = field(default_factory=set)
    state: TrialState = TrialState.RUNNING
    value: float | None = None
    started: float = field(default_factory=time.perf_counter)
    wall_time_s: float = 0.0

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def next_seed(self) -> int:
        return len(self.curves)

    @property
    def seeds_left(self) -> int:
        """Seeds not yet handed out."""
        return self.max_seeds - len(self.curves) if self.state == TrialState.RUNNING else 0

    def take_seed(self) -> int:
        seed = self.next_seed
        self.curves[seed] = SeedCurve()
        self.in_flight.add(seed)
        return seed

    @property
    def per_seed(self) -> dict[str, int]:
        return {str(seed): value for seed, value in sorted(self.values.items())}

    @property
    def env_steps(self) -> int:
        return sum(sum(c.steps) for c in self.curves.values())


TrialDone = Callable[[TrialRun], None]


def seed_finished(run: TrialRun, seed: int) -> TrialState | None:
    """Report one finished seed. Returns the trial's outcome once this seed decides it (COMPLETE: every seed is in;
    PRUNED; FAIL: another worker failed it as stale), None while it goes on or was already decided."""
    curve = run.curves[seed]
    run.in_flight.discard(seed)
    if run.state != TrialState.RUNNING:
        return None  # a sibling seed pruned the trial while this one was still training
    run.values[seed] = censored_value(curve.episodes_to_solve, run.config.max_episodes)
    try:
        run.trial.report(float(run.values[seed]), step=seed)
    except UpdateFinishedTrialError:
        return TrialState.FAIL
    if len(run.values) == run.max_seeds:  # every seed is in: the trial has its full value, pruned or not
        return TrialState.COMPLETE
    return pruner_outcome(run)


def pruner_outcome(run: TrialRun) -> TrialState | None:
    """Ask the pruner (again before spending another seed: the best trial may have changed since the last report):
    PRUNED if it says so, FAIL if the trial was failed elsewhere, None to go on."""
    try:
        return TrialState.PRUNED if run.trial.should_prune() else None
    except UpdateFinishedTrialError:
        return TrialState.FAIL


def conclude(study: optuna.Study, run: TrialRun, outcome: TrialState) -> None:
    """The one place a trial's end is told: COMPLETE or PRUNED with the median of its finished seeds, with its
    record attributes. A trial the storage already holds as finished (FAIL, by another worker's stale check, found
    now or earlier) is dropped as FAIL: its retry is already queued."""
    run.wall_time_s = time.perf_counter() - run.started
    if outcome != TrialState.FAIL:
        try:
            _tell(study, run, outcome)
            run.state = outcome
            return
        except UpdateFinishedTrialError:
            pass
    run.value = None
    run.state = TrialState.FAIL


def _tell(study: optuna.Study, run: TrialRun, state: TrialState) -> None:
    run.trial.set_user_attr(TRIAL_PER_SEED, run.per_seed)
    run.trial.set_user_attr(TRIAL_CENSORED, any(v > run.config.max_episodes for v in run.values.values()))
    run.trial.set_user_attr(TRIAL_ENV_STEPS, run.env_steps)
    run.trial.set_user_attr(TRIAL_WALL_TIME, round(run.wall_time_s, 3))
    median = aggregate(list(run.values.values()))
    if state == TrialState.COMPLETE:
        run.value = median
        told = study.tell(run.trial, run.value, skip_if_finished=True)
    else:
        # Optuna would store the last intermediate value, one seed's result, as the pruned trial's value (shown by
        # optuna-dashboard and `optuna trials`, often below the best's median). `run.value` stays None: MLflow's
        # `episodes_to_solve`, which its trials view sorts by, is a complete trial's value only.
        told = tell_pruned(study, run.trial, median)
    if told.state != state:  # failed as stale by another worker in between
        raise UpdateFinishedTrialError(f"trial {run.number} is already {told.state.name}")


def fail_unfinished(study: optuna.Study, runs: Sequence[TrialRun], on_trial_done: TrialDone) -> list[TrialRun]:
    """After an interrupt: trials still running are told FAIL (and their runs closed by the callback). The seeds a
    trial had finished stay on record (its per-seed values); a resumed sweep asks a new trial in its place.

    The interrupt may have landed between telling Optuna and noting it here, so Optuna's own record decides.
    """
    failed = [run for run in runs if run.state == TrialState.RUNNING]
    for run in failed:
        run.wall_time_s = time.perf_counter() - run.started
        with contextlib.suppress(UpdateFinishedTrialError):
            run.trial.set_user_attr(TRIAL_PER_SEED, run.per_seed)
        study.tell(run.trial, state=TrialState.FAIL, skip_if_finished=True)
        run.state = study.trials[run.number].state
        on_trial_done(run)
    return failed
