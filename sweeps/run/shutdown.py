"""How a sweep stops: Ctrl-C or SIGTERM at the next safe point, and a best-effort close after a store failure, so
that no trial or MLflow run stays RUNNING."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from sweeps.study.objective import TrialRun
from sweeps.tracking.tracker import StudyTracker

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Ctrl-C or SIGTERM asks the sweep to stop at the next safe point (no store write under way); a second signal
    forces it. Both take the same path, so a `kill` or a scheduler's stop leaves no trial or run RUNNING.

    An interrupt in the middle of an SQLite transaction left the MLflow store locked for the cleanup that followed.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0
        self.previous = set_stop_handlers(self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: stopping at the next safe point (again to force) ...", file=sys.stderr, flush=True)

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def release(self) -> None:
        set_stop_handlers(self.previous)


def set_stop_handlers(handler: Any) -> Any:
    """Install one handler for SIGINT and SIGTERM where Python allows it (the main thread); returns the previous
    ones (a tuple, which this function also takes back)."""
    if handler is None:
        return None
    handlers = handler if isinstance(handler, tuple) else (handler,) * len(STOP_SIGNALS)
    try:
        return tuple(signal.signal(sig, h) for sig, h in zip(STOP_SIGNALS, handlers, strict=True))
    except ValueError:  # not the main thread: leave the signals as they are
        return None


def close_after_store_failure(
    study: optuna.Study, runs: Sequence[TrialRun], tracker: StudyTracker, on_trial_done: Callable[..., None]
) -> None:
    """Best effort after a full disk or a cut-off journal: fail this process's running trials, close their runs
    and the study's.

    Whatever cannot be written now (the full store) is put right by the next run: its stale trials are failed and
    retried, and its runs left RUNNING are closed by the `repair` every sweep starts with.
    """
    previous = set_stop_handlers(signal.SIG_IGN)
    try:
        for run in runs:
            if run.state == TrialState.RUNNING:
                with contextlib.suppress(Exception):
                    study.tell(run.trial, state=TrialState.FAIL, skip_if_finished=True)
                run.state = TrialState.FAIL
                with contextlib.suppress(Exception):
                    on_trial_done(run, "FAIL")
        tracker.attempt("closing the study run", lambda: tracker.finish_study("FAILED"), force=True)
    finally:
        set_stop_handlers(previous)
