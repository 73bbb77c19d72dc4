"""Bring MLflow back in line with Optuna, the store of record: after a dead worker (`repair`) or an outage (`sync`).

Optuna holds every trial's parameters, state, value and per-seed results, so MLflow can always be rebuilt from it:
`repair` fails the trials of dead workers (they are re-queued) and closes the runs they left RUNNING; `sync` also
re-creates the runs that were never logged, with params, tags and summary metrics. Per-episode curves and the
learning-curve PNG live only in a worker's memory, so a re-created run has neither (its config.yaml is written).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.stores.heartbeats import fail_stale_trials
from sweeps.study.schema import (
    ATTR_SEEDS,
    TRIAL_ENV_STEPS,
    TRIAL_LOWER_BOUNDS,
    TRIAL_PER_SEED,
    TRIAL_TRACKING_TAGS,
    TRIAL_WALL_TIME,
    recorded,
    trial_config,
)
from sweeps.tracking import artifacts
from sweeps.tracking.tags import TAG_STUDY, TAG_SYNCED, TAG_TRIAL
from sweeps.tracking.tracker import StudyTracker, summary_metrics

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class Reconciled:
    failed_stale: list[int] = field(default_factory=list)  # trials of dead workers, now FAIL (and re-queued)
    closed: list[int] = field(default_factory=list)  # runs left RUNNING, now closed with the trial's state
    parent_closed: bool = False  # `sync`: the study's parent run, left RUNNING by a process that lost the store
    created: list[int] = field(default_factory=list)  # runs re-created from Optuna
    stopped: bool = False  # a stop signal ended it between two trials: the rest is left for the next run

    def describe(self) -> str:
        parts = [
            f"{len(self.failed_stale)} stale trials failed and re-queued",
            f"{len(self.closed)} runs closed",
        ]
        return ", ".join([*parts, f"{len(self.created)} runs re-created"])


def _no_stop() -> None:
    pass


def repair(study: optuna.Study, tracker: StudyTracker, check_stop: Callable[[], None] = _no_stop) -> Reconciled:
    """Fail dead workers' trials and close every run whose trial is no longer running. `check_stop` raises
    KeyboardInterrupt when a stop was asked: it is called between trials, and what was done so far is returned."""
    return _reconcile(study, tracker, create_missing=False, check_stop=check_stop)


def sync(study: optuna.Study, tracker: StudyTracker, check_stop: Callable[[], None] = _no_stop) -> Reconciled:
    """`repair`, and re-create the runs of finished trials that MLflow never got."""
    return _reconcile(study, tracker, create_missing=True, check_stop=check_stop)


def _reconcile(
    study: optuna.Study, tracker: StudyTracker, *, create_missing: bool, check_stop: Callable[[], None]
) -> Reconciled:
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    done = Reconciled(failed_stale=[t.number for t in trials if t.state == TrialState.FAIL and t.number not in before])
    runs = tracker.trials.by_number()
    for trial in trials:
        if not trial.state.is_finished():
            continue
        try:
            check_stop()
        except KeyboardInterrupt:
            done.stopped = True
            return done
        run = runs.get(trial.number)
        if run is None:
            if create_missing and trial.state in FINISHED:
                _create_run(study, tracker, trial)
                done.created.append(trial.number)
            continue
        if "seeds" not in run.data.params:  # created just before an outage, its params never arrived
            seeds = recorded(study, ATTR_SEEDS)
            tracker.trials.log_params(run.info.run_id, trial_config(study, trial).to_dict(), list(trial.params), seeds)
        if run.info.status == "RUNNING":
            if trial.state in FINISHED and "episodes_to_solve" not in run.data.metrics:
                tracker.trials.log_curves(run.info.run_id, {}, _summary(trial))
            tracker.trials.finish(run.info.run_id, trial.state.name)
            done.closed.append(trial.number)
    if create_missing:
        done.parent_closed = _close_idle_parent(study, tracker)
    return done


def _close_idle_parent(study: optuna.Study, tracker: StudyTracker) -> bool:
    """`sync` after an outage: a parent run still RUNNING while no trial runs anywhere was left so by a process
    whose closing call could not reach the store (a hung server). It is closed as FINISHED; a `run` still at its
    verdict closes it again when it ends. `repair` leaves it: it runs beside live workers."""
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        return False
    if tracker.client.get_run(tracker.parent_run_id).info.status != "RUNNING":
        return False
    tracker.finish_study("FINISHED")
    return True


def _summary(trial: FrozenTrial) -> dict[str, float]:
    attrs = trial.user_attrs
    per_seed = attrs.get(TRIAL_PER_SEED, {})
    return summary_metrics(
        value=trial.value if trial.state == TrialState.COMPLETE else None,  # as a live run: a pruned trial has none
        per_seed=per_seed,
        bounds=attrs.get(TRIAL_LOWER_BOUNDS, {}),
        extra={
            **{k: attrs[k] for k in (TRIAL_WALL_TIME, TRIAL_ENV_STEPS) if k in attrs},
            "seeds": float(len(per_seed)),
        },
    )


def _create_run(study: optuna.Study, tracker: StudyTracker, trial: FrozenTrial) -> str:
    config = trial_config(study, trial)
    seeds = recorded(study, ATTR_SEEDS)
    tags = {TAG_STUDY: study.study_name, TAG_SYNCED: "true", **trial.user_attrs.get(TRIAL_TRACKING_TAGS, {})}
    try:
        run_id = tracker.trials.start(trial.number, config.to_dict(), list(trial.params), seeds, tags=tags)
        tracker.trials.log_curves(run_id, {}, _summary(trial))
        tracker.trials.log_files(
            run_id, {"config.yaml": lambda p: artifacts.write_config_yaml(p, config.to_dict(), seeds)}
        )
        tracker.trials.finish(run_id, trial.state.name)
    except BaseException:  # a forced stop or a failure half-way: no half-made run; the next `sync` makes it whole
        _discard_unfinished(tracker, trial.number)
        raise
    return run_id


def _discard_unfinished(tracker: StudyTracker, number: int) -> None:
    """Delete the runs `sync` started for trial `number` and could not finish (deleted runs are not found again,
    so the trial counts as missing). Searched for, not taken by id: a stop inside `start` leaves the id unknown.
    Best effort, and a further stop signal must not cut it short; a run it cannot delete stays RUNNING, and the
    next `sync` or `repair` closes it from Optuna's record."""
    query = f"tags.`{TAG_TRIAL}` = '{number}' and tags.`{TAG_SYNCED}` = 'true' and attributes.status = 'RUNNING'"
    with _signals_ignored(), contextlib.suppress(Exception):
        for run in tracker.client.search_runs([tracker.experiment_id], query):
            tracker.client.delete_run(run.info.run_id)


@contextlib.contextmanager
def _signals_ignored():
    signals = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = [signal.signal(sig, signal.SIG_IGN) for sig in signals]
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)
