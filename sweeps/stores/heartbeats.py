"""Which RUNNING trials are still alive: heartbeats for both storages, and a retry of the trials that died.

Optuna's RDBStorage keeps heartbeats in its own table (database clock), but only `study.optimize` beats them and
Optuna 5's JournalStorage has none. We ask and tell by hand, so a `Heartbeats` thread beats for every trial this
process runs, and the journal gets heartbeats as a trial system attribute. A trial is stale when its newest sign
of life (heartbeat, else its start) is older than the grace period; `optuna.storages.fail_stale_trials` then marks
it FAIL and Optuna's `RetryHeartbeatStaleTrialCallback` enqueues its parameters again, so a SIGKILLed worker's
trial is redone by whoever looks next. A trial's very first heartbeat is written right after `ask`, so "no
heartbeat and started longer than the grace period ago" can only be a trial whose process died.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial, TrialState

from sweeps.stores.optuna_adapter import BaseHeartbeat, rdb_trial_ids_with_heartbeat, trial_id

HEARTBEAT_ATTR = "dqn_sweep:heartbeat"  # unix time, journal only
MAX_RETRY = 3  # a trial that kills its worker three times is given up (the budget then samples a new one)

StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


def retry_callback() -> StaleCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def _started_long_ago(trial: FrozenTrial, grace: float) -> bool:
    start = trial.datetime_start
    return start is not None and (datetime.datetime.now() - start).total_seconds() > grace


class HeartbeatRDBStorage(RDBStorage):
    """RDBStorage whose stale trials also include RUNNING trials that never got a heartbeat (see module doc)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = set(super()._get_stale_trial_ids(study_id))
        grace = float(self.grace_period or 2 * (self.heartbeat_interval or 60))
        beating = set(rdb_trial_ids_with_heartbeat(self, study_id))
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            if trial_id(trial) not in beating and _started_long_ago(trial, grace):
                stale.add(trial_id(trial))
        return sorted(stale)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """JournalStorage with heartbeats kept as a trial system attribute (wall clock: one machine or synced clocks)."""

    def __init__(self, backend, *, heartbeat_interval: int, grace_period: int, stale_callback: StaleCallback) -> None:
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self._stale_callback = stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            start = trial.datetime_start.timestamp() if trial.datetime_start else now
            # A retried trial inherits its predecessor's heartbeat attribute: its own start counts too.
            alive_at = max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), start)
            if now - alive_at > self.grace_period:
                stale.append(trial_id(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        return self._stale_callback


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail trials whose worker died and enqueue them again (a no-op for storages without heartbeats)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class Heartbeats:
    """One background thread beating for every trial this process is running."""

    def __init__(self, storage, interval: float) -> None:
        self._storage = storage if isinstance(storage, BaseHeartbeat) else None
        self._interval = interval
        self._trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        """Beat once now (the trial's first sign of life), then every interval until `discard`."""
        if self._storage is None:
            return
        self._storage.record_heartbeat(trial_id)
        with self._lock:
            self._trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._trial_ids.discard(trial_id)

    def __enter__(self) -> Heartbeats:
        if self._storage is not None:
            self._thread = threading.Thread(target=self._beat, name="dqn-sweep-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                trial_ids = sorted(self._trial_ids)
            for beating_id in trial_ids:
                # A finished trial refuses updates, a storage hiccup must not kill the thread: the next beat retries.
                with contextlib.suppress(Exception):
                    self._storage.record_heartbeat(beating_id)
