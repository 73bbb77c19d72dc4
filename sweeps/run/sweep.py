"""A whole `run` or `worker`: open the study, train its share with the worker loop, then the best agent and the
verdict, and close everything whatever ends it (the budget, a stop signal, a store failure)."""

from __future__ import annotations

import signal
import sys
import time

import optuna
import sqlalchemy.exc

from dqn_core.errors import ConfigError
from sweeps.run.options import SweepOptions
from sweeps.run.replay import log_best_agent
from sweeps.run.session import open_session
from sweeps.run.shutdown import StopRequest, set_stop_handlers
from sweeps.run.summary import SweepSummary, study_counts
from sweeps.run.trial_log import TrialLog
from sweeps.run.worker import SweepWorker
from sweeps.stores.journal import JournalPartialLine
from sweeps.stores.locations import StoreFull, disk_full_message, first_line, is_disk_full, redact
from sweeps.study.existing import best_trial
from sweeps.tracking.recovery import repair
from sweeps.tracking.tags import TAG_VERDICT, TAG_VERDICT_OUTCOME
from sweeps.tracking.tracker import StudyTracker

# What a database storage raises when its server goes away: Optuna wraps a failed commit, reads surface
# SQLAlchemy's own errors. (A journal's failures are OSErrors, handled as such.)
STORAGE_OUTAGES = (
    optuna.exceptions.StorageInternalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
)


class StorageOutage(ConfigError):
    """The Optuna database failed mid-sweep: one line, exit 2, nothing left RUNNING that can still be reached."""


def run_sweep(options: SweepOptions) -> SweepSummary:
    """Run (or resume, or join) the study of `options` until it holds its budget of finished trials."""
    try:
        return _run(options)
    except OSError as exc:  # a full disk before the first trial: nothing runs yet, nothing to close
        if not is_disk_full(exc):
            raise
        raise StoreFull(disk_full_message(exc, options.storage)) from None


def _run(options: SweepOptions) -> SweepSummary:
    stop = StopRequest()  # before anything is opened: a stop while the parent run reopens is obeyed, not fatal
    try:
        session = open_session(options)
        study, tracker = session.study, session.tracker
        tracker.attempt("closing runs of dead workers", lambda: repair(study, tracker))
        started = time.perf_counter()
        log = TrialLog(options, study, tracker)
        worker = SweepWorker(options, session, log, stop)
    except BaseException:
        stop.release()
        raise
    interrupted, verdict = 0, None
    try:
        ended_early = worker.train()
        log.flush()
        notes = log_best_agent(study, tracker, _announcer(options, log)) + ended_early
        stop.check()  # a stop while the best agent trained: the parent run ends KILLED, the exit code says so
        # Runs left RUNNING: a dead worker's (its trials were failed as stale while this run trained, after the
        # repair at its start) and any whose closing call was skipped during an outage.
        tracker.attempt("closing runs", lambda: repair(study, tracker), force=True)
        verdict = _verdict(options, study, tracker, stop, log)
        tracker.attempt("closing the study run", lambda: tracker.finish_study("FINISHED"), force=True)
    except KeyboardInterrupt:
        interrupted = stop.signum or signal.SIGINT
        previous = set_stop_handlers(signal.SIG_IGN)  # a further Ctrl-C (or SIGTERM) must not cut cleanup short
        try:
            worker.fail_running()
            # A forced stop can land while a finished trial was being logged: close runs from Optuna's record.
            tracker.attempt("closing runs", lambda: repair(study, tracker), force=True)
            tracker.attempt("closing the study run", lambda: tracker.finish_study("KILLED"), force=True)
        finally:
            set_stop_handlers(previous)
        notes = []
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        worker.close_after_store_failure()
        raise StoreFull(disk_full_message(exc, options.storage)) from None
    except JournalPartialLine:  # another process's write was cut off: stop before anything lands on it
        worker.close_after_store_failure()
        raise
    except STORAGE_OUTAGES as exc:  # the Optuna database went away (a server stopped, a network cut)
        worker.close_after_store_failure()
        raise StorageOutage(
            redact(
                f"the Optuna storage {options.storage} failed mid-sweep ({first_line(exc)[:300]}); finished trials "
                "are kept and the runs this process had open are closed; run the same command again once the "
                "storage is back (the trials that were running are retried after --grace-period)"
            )
        ) from None
    finally:
        stop.release()
        log.close()
    if tracker.failed_calls:
        notes.append(
            f"MLflow tracking failed or was skipped {tracker.failed_calls} times; "
            + redact(f"`{tracker.sync_hint}` re-creates the missing runs")
        )
    best = best_trial(study)
    return SweepSummary(
        study_name=options.study_name,
        counts=study_counts(study),
        new_trials=log.new_trials,
        seconds=time.perf_counter() - started,
        tracking_seconds=dict(tracker.seconds),
        trial_seconds=log.trial_seconds,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        experiment_id=tracker.experiment_id,
        interrupted=interrupted,
        notes=notes,
        seed_runs=log.seed_runs,
        env_steps=log.env_steps,
        seeds_per_trial=dict(log.seeds_per_trial),
        verdict=verdict,
    )


def _announcer(options: SweepOptions, log: TrialLog):
    """Where a step after the trials says what it is doing: stderr, once the bar is closed (with --no-progress,
    nowhere: stdout stays the summary)."""
    if not options.progress:
        return None

    def announce(line: str) -> None:
        log.close()  # the line must not land inside the bar
        print(line, file=sys.stderr, flush=True)

    return announce


def _verdict(options: SweepOptions, study: optuna.Study, tracker: StudyTracker, stop: StopRequest, log: TrialLog):
    """The winner and the book on unseen seeds (`verdict.py`), stored in the study and on its parent run."""
    from sweeps.run.verdict import decide

    n = options.study.validate_seeds
    if not options.verdict or n < 1 or best_trial(study) is None:
        return None
    stop.check()
    announce = _announcer(options, log)
    if announce is not None:
        announce(f"verdict: training the winner and the book on {n} unseen seeds ...")
    verdict = decide(study, n, margin=options.study.equivalence_margin, check_stop=stop.check)
    stop.check()  # a stop in the verdict's last compiled call
    if verdict is not None:
        tracker.attempt(
            "logging the verdict",
            lambda: tracker.log_study_result(
                {TAG_VERDICT: verdict.line, TAG_VERDICT_OUTCOME: verdict.outcome}, verdict.metrics()
            ),
        )
    return verdict
