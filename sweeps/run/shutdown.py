"""How a sweep stops: Ctrl-C or SIGTERM at the next safe point, and a best-effort close after a store failure, so
that no trial or MLflow run stays RUNNING."""

from __future__ import annotations

import contextlib
import os
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

    Two signals that arrive during one long C call (a compiled TensorFlow call) reach Python as one handler call:
    CPython only marks a signal as pending. Each delivery also writes one byte to the wakeup fd, though, so the
    handler counts the deliveries there, and a second one forces the stop however close together they came.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0
        self._deliveries = _DeliveryCounter()
        self.previous = set_stop_handlers(self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        forced = self.requested or self._deliveries.count() > 1
        self.requested = True
        self.signum = self.signum or signum
        if forced:
            raise KeyboardInterrupt
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{name}: stopping at the next safe point (again to force) ...", file=sys.stderr, flush=True)

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def release(self) -> None:
        set_stop_handlers(self.previous)
        self._deliveries.close()


class _DeliveryCounter:
    """How many SIGINT/SIGTERM deliveries reached the process since the last `count()`, read from a wakeup fd
    (a non-blocking pipe CPython's C-level handler writes each delivered signal's number to). Outside the main
    thread, or where a wakeup fd is already in use (an event loop's), it counts nothing and every call counts
    as one delivery."""

    def __init__(self) -> None:
        self._read = self._write = -1
        self._previous = -1
        try:
            read, write = os.pipe()
        except OSError:
            return
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        try:
            previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            os.close(read)
            os.close(write)
            return
        if previous != -1:  # someone else's: give it back and count nothing
            signal.set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
            return
        self._read, self._write = read, write

    def count(self) -> int:
        if self._read == -1:
            return 1
        try:
            data = os.read(self._read, 4096)
        except (BlockingIOError, OSError):
            data = b""
        return max(1, sum(byte in STOP_SIGNALS for byte in data))

    def close(self) -> None:
        if self._read == -1:
            return
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        os.close(self._read)
        os.close(self._write)
        self._read = self._write = -1


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
