"""Every Optuna internal dqn-sweep relies on, in one module, tested on the Optuna range pinned in pyproject.toml.

Optuna's public API lacks three things we need: a trial's storage id (asking and telling by hand, we beat
heartbeats per trial id: `Trial._trial_id`), a heartbeat mixin for a storage Optuna ships without heartbeats
(`optuna.storages._heartbeat.BaseHeartbeat`, which `fail_stale_trials` checks for), and a read of the heartbeat
table (RDBStorage's `_rdb.models` and `_create_scoped_session`). And `GridSampler.after_trial` calls
`study.stop()`, which raises outside `study.optimize`, so its exhaustion must be handled by us. Nothing else in
dqn-sweep may touch an underscore name of Optuna, with one exception that `BaseHeartbeat` itself imposes: the
storages in `heartbeats.py` implement its abstract `_get_stale_trial_ids` (the hook `fail_stale_trials` calls).
A new Optuna release is checked here first (`tests/sweeps/test_optuna_adapter.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

__all__ = ["BaseHeartbeat", "GridSampler", "grid_points_started", "rdb_trial_ids_with_heartbeat", "trial_id"]


def trial_id(trial: optuna.trial.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (unique across studies of one storage; numbers are per study)."""
    return trial._trial_id


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


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without the `study.stop()` in `after_trial` (it raises outside `optimize`, which
    crashed a sweep once its grid was used up, leaving trials RUNNING); the sweep stops on `grid_points_started`."""

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
