"""Every Optuna internal dqn-sweep relies on, in one module, tested on the Optuna range pinned in pyproject.toml.

Optuna's public API lacks three things we need: a trial's storage id (asking and telling by hand, we beat
heartbeats per trial id: `Trial._trial_id`), a heartbeat mixin for a storage Optuna ships without heartbeats
(`optuna.storages._heartbeat.BaseHeartbeat`, which `fail_stale_trials` checks for), and a read of the heartbeat
table (RDBStorage's `_rdb.models` and `_create_scoped_session`). Two public pieces do not fit and are redone here
with its internals: `Study.tell(state=PRUNED)` stores the last intermediate value (one seed's result) as the
trial's value (`tell_pruned`), and `GridSampler` stops the study from `after_trial` and gives an enqueued trial no
grid point (our `GridSampler`). And the study's system attributes, which `Study` no longer exposes since
Optuna 4 (every storage still keeps them): `study_system_attrs`, `set_study_system_attr`. Nothing else in
dqn-sweep may touch an underscore name of Optuna, with one exception that `BaseHeartbeat` itself imposes: the
storages in `heartbeats.py` implement its abstract `_get_stale_trial_ids` (the hook `fail_stale_trials` calls).
A new Optuna release is checked here first (`tests/sweeps/test_optuna_adapter.py`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "BaseHeartbeat",
    "GridSampler",
    "grid_points_started",
    "rdb_trial_ids_with_heartbeat",
    "set_study_system_attr",
    "study_system_attrs",
    "tell_pruned",
    "trial_id",
]


def trial_id(trial: optuna.trial.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (unique across studies of one storage; numbers are per study)."""
    return trial._trial_id


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """A study's system attributes, read from its storage (`Study._storage`, `Study._study_id`)."""
    return study._storage.get_study_system_attrs(study._study_id)


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, key, value)


def rdb_trial_ids_with_heartbeat(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """Ids of the study's trials that have a row in Optuna's heartbeat table."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        rows = (
            session.query(models.TrialHeartbeatModel.trial_id)
            .join(models.TrialModel, models.TrialModel.trial_id == models.TrialHeartbeatModel.trial_id)
            .filter(models.TrialModel.study_id == study_id)
            .all()
        )
    return [row[0] for row in rows]


def tell_pruned(study: optuna.Study, trial: optuna.trial.Trial, value: float) -> FrozenTrial:
    """Tell the trial PRUNED with `value` as its value; returns the trial as stored.

    `Study.tell(state=PRUNED)` stores the last intermediate value as a pruned trial's value (Optuna's
    `study/_tell.py`; "whether a pruned trial should have an actual value can be discussed"), and a storage refuses
    to change the value of a finished trial afterwards (in-memory, RDB and journal alike). Our intermediate values
    are single seeds' results, so optuna-dashboard and `optuna trials` showed a pruned trial as one seed's value,
    often below the best trial's median. This is `tell`'s PRUNED path with the value given: the sampler's
    `after_trial`, then one `set_trial_state_values` while the trial still runs. The intermediate values stay as
    reported, so the pruner and TPE (which ranks pruned trials by their last step and intermediate value, never by
    their value) see what they saw before. A trial already finished (failed as stale by another worker) is returned
    unchanged, as `tell(..., skip_if_finished=True)` does; one finished in between raises UpdateFinishedTrialError.
    """
    study._thread_local.cached_all_trials = None  # as `tell` does: the cache is valid within one trial only
    frozen = study._storage.get_trial(trial._trial_id)
    if frozen.state.is_finished():
        return copy.deepcopy(frozen)
    if frozen.state != TrialState.RUNNING:
        raise ValueError(f"Cannot tell a {frozen.state.name} trial.")
    values = [float(value)]
    try:
        study.sampler.after_trial(optuna.pruners._filter_study(study, frozen), frozen, TrialState.PRUNED, values)
    finally:
        study._storage.set_trial_state_values(frozen._trial_id, TrialState.PRUNED, values)
    return copy.deepcopy(study._storage.get_trial(frozen._trial_id))


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler with two changes. No `study.stop()` in `after_trial` (it raises outside `optimize`,
    which crashed a sweep once its grid was used up, leaving trials RUNNING); the sweep stops on
    `grid_points_started`. And every trial takes a grid point in `before_trial`, chosen here:
    - an enqueued trial (the book's trial 0, `--enqueue`) takes the point that agrees with its fixed parameters.
      Optuna gives it none, so the grid trained the book's point a second time, and a trial that fixes only some
      parameters (the book's values of the others lie outside the grid) crashed asking the grid for the rest;
    - any other trial takes the first point no trial has taken (Optuna gives trial n point n while n is below the
      grid's size, whether an enqueued trial took it or not).
    """

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if "grid_id" in trial.system_attrs:  # a retried trial keeps its point
            return
        taken = grid_points_started(study)
        fixed = trial.system_attrs.get("fixed_params")
        points = range(len(self._all_grids))
        if fixed is None:
            free = [g for g in points if g not in taken]
            if not free:  # used up: Optuna's own choice (a warning, then a repeat); the sweep stops before this
                super().before_trial(study, trial)
                return
            self._take(study, trial, free[0])
            return
        agree = [g for g in points if self._agrees(self._all_grids[g], fixed)]
        if agree:  # the first free point that agrees, else a repeat: an enqueued trial trains what it fixes
            self._take(study, trial, next((g for g in agree if g not in taken), agree[0]))
        elif not set(self._param_names) <= set(fixed):  # a value off the grid: the rest still comes from a point
            self._take(study, trial, next((g for g in points if g not in taken), 0))

    def _agrees(self, point: Sequence[Any], fixed: Mapping[str, Any]) -> bool:
        return all(
            self._grid_value_equal(value, fixed[name])
            for name, value in zip(self._param_names, point, strict=True)
            if name in fixed
        )

    def _take(self, study: optuna.Study, trial: FrozenTrial, grid_id: int) -> None:
        study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
        study._storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        return None


def grid_points_started(study: optuna.Study) -> set[Any]:
    """Grid points a trial of `study` has taken (running or finished): the grid sampler's `grid_id` attribute."""
    return {
        t.system_attrs["grid_id"]
        for t in study.get_trials(deepcopy=False)
        if "grid_id" in t.system_attrs and t.state != TrialState.WAITING
    }
