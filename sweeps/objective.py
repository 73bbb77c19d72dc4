"""The Optuna objective: episodes to five consecutive successes, median over seeds, for a batch of trials at once.

All (trial x seed) agents of a batch train as one population. The per-episode hook keeps each seed's lower bound
on its final value (episodes so far plus the successes it still needs; the solving episode once solved; or
max_episodes + 1 once it cannot solve any more), reports the median bound to Optuna whenever every seed of the trial
has finished another episode, prunes per trial, and finishes a trial (tell Optuna, log MLflow) the moment its last
seed stops, so a Ctrl-C keeps every trial that was already done. A trial that another worker declared dead (its
heartbeats were late) refuses updates; it is then dropped here as FAIL, since its retry is already queued.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from dqn_core.config import TrainConfig
from dqn_core.shape import StreamShape
from dqn_core.trainer import EpisodeStats, train_population


def censored_value(episodes_to_solve: int | None, max_episodes: int) -> int:
    """An unsolved seed counts as max_episodes + 1: worse than any solve, and visibly censored."""
    return episodes_to_solve if episodes_to_solve is not None else max_episodes + 1


def aggregate(values: Sequence[float]) -> float:
    """Median over seeds: robust to the one unlucky seed that RL is famous for."""
    return float(np.median(values))


@dataclass
class SeedCurve:
    steps: list[int] = field(default_factory=list)
    epsilon: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    bound: int = 0
    episodes_to_solve: int | None = None
    finished: bool = False


@dataclass
class TrialRun:
    """One trial while its seeds train; `state` becomes COMPLETE, PRUNED or FAIL when it finishes."""

    trial: optuna.Trial
    config: TrainConfig
    seeds: tuple[int, ...]
    run_id: str | None = None
    curves: dict[int, SeedCurve] = field(default_factory=dict)
    state: str = "RUNNING"
    value: float | None = None
    reported_step: int = 0
    started: float = field(default_factory=time.perf_counter)
    wall_time_s: float = 0.0

    def __post_init__(self) -> None:
        self.curves = {seed: SeedCurve() for seed in self.seeds}

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def per_seed(self) -> list[int]:
        return [censored_value(c.episodes_to_solve, self.config.max_episodes) for c in self.curves.values()]

    @property
    def env_steps(self) -> int:
        return sum(sum(c.steps) for c in self.curves.values())


TrialDone = Callable[[TrialRun], None]


def run_batch(
    study: optuna.Study,
    runs: Sequence[TrialRun],
    *,
    on_trial_done: TrialDone,
    shape: StreamShape | None = None,
    check_stop: Callable[[], None] = lambda: None,
) -> None:
    """Train every (trial, seed) of `runs` as one population; each trial is told to `study` as soon as it ends.

    `shape` is the compiled shape every batch of the sweep shares (`SweepFile.stream_shape`).
    `check_stop` runs at the start of every hook call, a point where no store write is under way: it raises
    (KeyboardInterrupt) when the user asked to stop.
    """
    members: list[tuple[TrialRun, int]] = [(run, seed) for run in runs for seed in run.seeds]

    def on_episode(agent: int, stats: EpisodeStats) -> bool:
        check_stop()
        run, seed = members[agent]
        if run.state != "RUNNING":
            return False  # a sibling seed pruned the trial
        curve = run.curves[seed]
        _record(curve, stats, run.config)
        unsolvable = curve.finished and curve.episodes_to_solve is None
        step = min(math.inf if c.finished else len(c.steps) for c in run.curves.values())
        try:
            if not math.isinf(step) and step > run.reported_step:
                run.reported_step = int(step)
                run.trial.report(aggregate([c.bound for c in run.curves.values()]), run.reported_step)
                if run.trial.should_prune():
                    _finish(study, run, TrialState.PRUNED, on_trial_done)
                    return False
            if all(c.finished for c in run.curves.values()):
                _finish(study, run, TrialState.COMPLETE, on_trial_done)
        except UpdateFinishedTrialError:
            _drop(run, on_trial_done)
            return False
        return not unsolvable  # its value is fixed at max_episodes + 1: more episodes cannot change it

    train_population([(run.config, seed) for run, seed in members], on_episode=on_episode, shape=shape)
    for run in runs:  # a trial with no episode at all (impossible with max_episodes >= 1) would still be closed
        if run.state == "RUNNING":
            try:
                _finish(study, run, TrialState.COMPLETE, on_trial_done)
            except UpdateFinishedTrialError:
                _drop(run, on_trial_done)


def _record(curve: SeedCurve, stats: EpisodeStats, config: TrainConfig) -> None:
    curve.steps.append(stats.steps)
    curve.epsilon.append(stats.epsilon)
    curve.loss.append(stats.mean_loss)
    needed = config.successes_to_solve - stats.consecutive_successes
    if needed <= 0:
        curve.episodes_to_solve, curve.finished, curve.bound = stats.episode, True, stats.episode
    elif stats.episode + needed > config.max_episodes:
        curve.bound, curve.finished = config.max_episodes + 1, True
    else:
        curve.bound = stats.episode + needed


def _finish(study: optuna.Study, run: TrialRun, state: TrialState, on_trial_done: TrialDone) -> None:
    run.wall_time_s = time.perf_counter() - run.started
    if state == TrialState.COMPLETE:
        per_seed = dict(zip(map(str, run.seeds), run.per_seed, strict=True))
        run.trial.set_user_attr("episodes_to_solve_per_seed", per_seed)
        run.trial.set_user_attr("censored", any(c.episodes_to_solve is None for c in run.curves.values()))
    else:  # pruned or failed: only lower bounds are known
        run.trial.set_user_attr("lower_bound_per_seed", {str(s): c.bound for s, c in run.curves.items()})
    run.trial.set_user_attr("env_steps", run.env_steps)
    run.trial.set_user_attr("wall_time_s", round(run.wall_time_s, 3))
    if state == TrialState.COMPLETE:
        run.value = aggregate(run.per_seed)
        told = study.tell(run.trial, run.value, skip_if_finished=True)
    else:
        told = study.tell(run.trial, state=state, skip_if_finished=True)
    if told.state != state:  # failed as stale by another worker in between
        raise UpdateFinishedTrialError(f"trial {run.number} is already {told.state.name}")
    run.state = state.name
    on_trial_done(run)


def _drop(run: TrialRun, on_trial_done: TrialDone) -> None:
    """The storage already holds this trial as finished (FAIL, by another worker's stale check): stop tracking it."""
    run.wall_time_s = time.perf_counter() - run.started
    run.value = None
    run.state = "FAIL"
    on_trial_done(run)


def fail_unfinished(study: optuna.Study, runs: Sequence[TrialRun], on_trial_done: TrialDone) -> list[TrialRun]:
    """After an interrupt: trials still running are told FAIL (and their runs closed by the callback).

    The interrupt may have landed between telling Optuna and noting it here, so Optuna's own record decides.
    """
    failed = [run for run in runs if run.state == "RUNNING"]
    for run in failed:
        run.wall_time_s = time.perf_counter() - run.started
        study.tell(run.trial, state=TrialState.FAIL, skip_if_finished=True)
        run.state = study.trials[run.number].state.name
        on_trial_done(run)
    return failed
