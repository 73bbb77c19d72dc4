"""Run a sweep: create or resume the Optuna study, race (trial, seed) work through one streaming population, tell,
track, show progress, and end with a verdict against the book.

`--n-trials` is the total number of finished (complete or pruned) trials the study should hold: running the same
command again resumes the study and runs only the missing trials. Failed trials (an interrupt, say) do not count.
Any number of processes may run one study: each counts finished + running trials and asks new ones under a
per-study lock (`budget.py`), beats for its running trials, and fails and re-queues the trials of dead workers
(`liveness.py`); a `worker` reads everything it needs from the study itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from dqn_core.agent import TrainedAgent
from dqn_core.errors import ConfigError
from sweeps.stores.budget import budget_lock
from sweeps.stores.heartbeats import Heartbeats, fail_stale_trials
from sweeps.stores.journal import JournalPartialLine
from sweeps.stores.locations import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    StoreFull,
    disk_full_message,
    first_line,
    is_disk_full,
    open_optuna_storage,
    redact,
)
from sweeps.stores.optuna_adapter import grid_points_started, trial_id
from sweeps.stores.preflight import GRACE_PERIOD_MAX_S, HEARTBEAT_MAX_S, bounded, check_study_name, probe_stores
from sweeps.study.existing import best_trial
from sweeps.study.objective import TrialRun, fail_unfinished
from sweeps.study.race import SeedRace
from sweeps.study.schema import (
    ATTR_BASE_CONFIG,
    ATTR_COMMAND,
    ATTR_DEFINITION,
    ATTR_OPTIONS,
    ATTR_SEEDS,
    ATTR_SWEEP_FILE,
    ATTR_SWEEP_HASH,
    BOOK,
    CURVES_FILE,
    TRIAL_BASELINE,
    TRIAL_FAIL_REASON,
    TRIAL_RUN_ID,
    TRIAL_TRACKING_TAGS,
    TRIAL_WORKER,
    StudyOptions,
    per_seed_values,
    trial_config,
)
from sweeps.study.space import SweepFile, sweep_from_mapping
from sweeps.study.strategies import make_pruner, make_sampler
from sweeps.study.warmstart import QueuedConfig, enqueue
from sweeps.tracking import artifacts
from sweeps.tracking.live_metrics import LiveProgress
from sweeps.tracking.recovery import repair
from sweeps.tracking.tags import (
    TAG_AGENT_LOGGED,
    TAG_PRUNER,
    TAG_SAMPLER,
    TAG_STATE,
    TAG_STORAGE,
    TAG_STUDY,
    TAG_VERDICT,
    TAG_VERDICT_OUTCOME,
)
from sweeps.tracking.tracker import StudyTracker, summary_metrics

OBJECTIVE_NAME = "episodes_to_solve"
IDLE_POLL_S = 5.0  # a worker with nothing to ask (the rest is running elsewhere) looks again this often


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    """One process's sweep: the study's settings (`StudyOptions`) and where and how this process runs it."""

    sweep: SweepFile
    study_name: str
    study: StudyOptions
    storage: str
    tracking_uri: str
    progress: bool = True
    command_line: str = ""
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    join_only: bool = False  # `worker`: never create the study
    verdict: bool = True  # `run` ends with the verdict (winner vs book on unseen seeds); `worker` never does
    timeout_s: float | None = None  # no new trial is asked after this; running trials finish
    queued: tuple[QueuedConfig, ...] = ()  # warm start: configurations to try first (`warmstart.py`)

    def __post_init__(self) -> None:
        bounded("heartbeat-interval", self.heartbeat_interval, 1, HEARTBEAT_MAX_S)
        bounded("grace-period", self.grace_period, 1, GRACE_PERIOD_MAX_S)
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace-period ({self.grace_period} s) must exceed heartbeat-interval ({self.heartbeat_interval} s)"
            )
        if self.timeout_s is not None and not 0 < self.timeout_s < math.inf:
            raise ConfigError(f"--timeout must be a positive number of minutes, got {self.timeout_s / 60:g}")
        if self.join_only:  # an existing study keeps the name it has
            if not self.study_name.strip():
                raise ConfigError("study name must not be empty")
        else:
            check_study_name(self.study_name)

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.study.seeds


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
    verdict: Any = None  # verdict.Verdict, when `run` computed or found one


def sweep_hash(sweep: SweepFile, seeds: tuple[int, ...]) -> str:
    """What must not change when a study is resumed: the base config, the space, the seeds a trial may take."""
    payload = {"base": sweep.base.to_dict(), "space": [repr(p) for p in sweep.space], "seeds": list(seeds)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def open_storage(options: SweepOptions):
    return open_optuna_storage(
        options.storage, heartbeat_interval=options.heartbeat_interval, grace_period=options.grace_period
    )


def sampler_seed(options: SweepOptions, *, creator: bool) -> int | None:
    """The seed as given for the process that creates the study (one process alone is reproducible); mixed with
    the process id for any process that joins or resumes it, so workers do not propose the same points."""
    seed = options.study.seed
    if seed is None or creator:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{worker_name()}".encode()).digest()[:4], "big")


def worker_name() -> str:
    """Which process ran a trial (a trial user attribute; also what makes joiners' seeds differ)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def find_study(options: SweepOptions, storage, *, locked: bool = False) -> optuna.Study | None:
    """The existing study if it was made from the same sweep (else a ConfigError); None if there is none.

    A study without its sweep hash is half made: the hash is written last. Outside the budget lock its creator may
    still be writing it (four `run`s racing to create one study), so it is returned unchecked and looked at again
    under the lock; under the lock its creator has died (creation holds the lock), and `run` completes it.
    """
    sampler = make_sampler(options.study.sampler, seed=sampler_seed(options, creator=False), space=options.sweep.space)
    try:
        existing = optuna.load_study(study_name=options.study_name, storage=storage, sampler=sampler)
    except KeyError:
        return None
    except Exception as exc:
        raise ConfigError(redact(f"cannot read study '{options.study_name}': {first_line(exc)}")) from None
    existing.pruner = make_pruner(options.study)
    recorded = existing.user_attrs.get(ATTR_SWEEP_HASH)
    if recorded is None and _half_made(existing):
        if not locked:
            return existing
        if options.join_only:
            raise ConfigError(
                f"study '{options.study_name}' was never completely created; finish it with `dqn-sweep run "
                f"--config SWEEP.yaml --study-name {options.study_name}`"
            )
        return _complete_study(existing, options)
    if recorded != sweep_hash(options.sweep, options.seeds):
        raise ConfigError(
            f"study '{options.study_name}' was created from a different sweep config or seed count; "
            "use another --study-name (nothing was changed)"
        )
    return existing


_OWN_ATTRS = frozenset({ATTR_BASE_CONFIG, ATTR_SEEDS, ATTR_DEFINITION, ATTR_SWEEP_FILE})


def _half_made(study: optuna.Study) -> bool:
    """No more than `_complete_study` writes before the hash: its attributes and the queued baseline. A study made
    by anything else (its own attributes or trials) is never taken over."""
    if not set(study.user_attrs) <= _OWN_ATTRS:
        return False
    trials = study.get_trials(deepcopy=False)
    return all(t.state == TrialState.WAITING and t.user_attrs.get(TRIAL_BASELINE) == BOOK for t in trials)


def create_study(options: SweepOptions, storage) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=options.study_name,
        sampler=make_sampler(
            options.study.sampler, seed=sampler_seed(options, creator=True), space=options.sweep.space
        ),
        pruner=make_pruner(options.study),
        direction="minimize",
    )
    with warnings.catch_warnings():  # experimental since Optuna 3.2, unchanged through 5.0 (pinned)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([OBJECTIVE_NAME])  # what optuna-dashboard and Optuna's CLI call the value
    return _complete_study(study, options)


def _complete_study(study: optuna.Study, options: SweepOptions) -> optuna.Study:
    """Everything a study records about its sweep, and the book's baseline queued as its first trial; the sweep
    hash goes last, so that a study with a hash is complete (see `find_study`). Safe to run again on a study
    whose creator died half-way."""
    study.set_user_attr(ATTR_BASE_CONFIG, options.sweep.base.to_dict())
    study.set_user_attr(ATTR_SEEDS, list(options.seeds))
    study.set_user_attr(ATTR_DEFINITION, options.sweep.definition)
    study.set_user_attr(ATTR_SWEEP_FILE, options.sweep.path)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(options.sweep.book_params(), user_attrs={TRIAL_BASELINE: BOOK})
    study.set_user_attr(ATTR_SWEEP_HASH, sweep_hash(options.sweep, options.seeds))
    return study


def record_run_options(study: optuna.Study, options: SweepOptions) -> None:
    """What a later `worker` without options uses: this run's study options (budget, seeds, sampler, pruner...)."""
    study.set_user_attr(ATTR_COMMAND, options.command_line)
    study.set_user_attr(ATTR_OPTIONS, options.study.to_dict())


def worker_options(study: optuna.Study, *, storage: str, tracking_uri: str, **overrides: Any) -> SweepOptions:
    """Options for a process joining `study`: the sweep and settings the study recorded, then `overrides` (the
    study options among them; None leaves a setting as recorded)."""
    definition = study.user_attrs.get(ATTR_DEFINITION)
    if definition is None:
        raise ConfigError(
            f"study '{study.study_name}' does not record its sweep (made by an older dqn-sweep); "
            "join it with `dqn-sweep run --config SWEEP.yaml` instead"
        )
    sweep = sweep_from_mapping(definition, source=f"study '{study.study_name}'")
    recorded = study.user_attrs.get(ATTR_OPTIONS, {})
    if "max_seeds" not in recorded:
        raise ConfigError(
            f"study '{study.study_name}' was made before seeds were raced (it records no max_seeds); "
            "start a new study for this version of dqn-sweep"
        )
    study_fields = {k: v for k, v in overrides.items() if k in recorded}
    study_options = StudyOptions.from_mapping(recorded, source=f"study '{study.study_name}'").replace(
        as_flags=True, **study_fields
    )
    rest = {k: v for k, v in overrides.items() if k not in recorded and v is not None}
    return SweepOptions(
        sweep=sweep,
        study_name=study.study_name,
        study=study_options,
        storage=storage,
        tracking_uri=tracking_uri,
        join_only=True,
        verdict=False,
        **rest,
    )


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def committed_count(study: optuna.Study) -> int:
    """Finished trials plus those running anywhere: what the budget has already handed out."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)))


def run_sweep(options: SweepOptions) -> SweepSummary:
    """Run (or resume, or join) the study of `options` until it holds its budget of finished trials."""
    try:
        return SweepWorker(options).run()
    except OSError as exc:  # a full disk before the first trial: nothing runs yet, nothing to close
        if not is_disk_full(exc):
            raise
        raise StoreFull(disk_full_message(exc, options.storage)) from None


class SweepWorker:
    """One process's share of a study: opens it, races (trial, seed) work through the stream, tells and tracks each
    trial, and closes everything on an interrupt or a store failure. It owns the per-process state."""

    def __init__(self, options: SweepOptions) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.options = options
        self.settings = options.study
        # Preflight: the sampler and pruner, both stores read-only, then the study; nothing is created before all
        # of it passed (a grid without steps used to fail only after the journal file had been created).
        make_sampler(self.settings.sampler, seed=self.settings.seed, space=options.sweep.space)
        make_pruner(self.settings)
        probe_stores(
            options.storage,
            options.tracking_uri,
            study_name=options.study_name,
            writer=True,
            must_exist=options.join_only,
        )
        self.storage = open_storage(options)
        existing = find_study(options, self.storage)  # reads only: a bad input changes no store
        if existing is None and options.join_only:
            raise ConfigError(f"unknown study '{options.study_name}'")
        self.tags = {
            TAG_STUDY: options.study_name,
            TAG_SAMPLER: self.settings.sampler,
            TAG_PRUNER: self.settings.pruner,
            TAG_STORAGE: redact(options.storage),
        }
        with budget_lock(options.storage, self.storage, options.study_name):  # several workers may start at once
            self.study = find_study(options, self.storage, locked=True) or create_study(options, self.storage)
            self.tracker = StudyTracker(
                options.tracking_uri,
                options.study_name,
                tags=self.tags,
                searched=[p.name for p in options.sweep.space],
                sweeping=True,
            )
            self.tracker.sync_hint = (  # pasted as printed, it must reach these very stores
                f"dqn-sweep sync --study-name {options.study_name} --storage {options.storage} "
                f"--tracking-uri {options.tracking_uri}"
            )
            if not options.join_only:  # only once MLflow took the study too: a refused start records no budget
                try:
                    record_run_options(self.study, options)
                except Exception:  # a full Optuna store, say: the parent run just (re)opened must not stay RUNNING
                    self.tracker.attempt(
                        "closing the study run", lambda: self.tracker.finish_study("FAILED"), force=True
                    )
                    raise
            for line in enqueue(self.study, options.queued):
                print(line, flush=True)
        self.live = LiveProgress(self.tracker)
        self.heartbeats = Heartbeats(self.storage, options.heartbeat_interval)
        self.race = SeedRace(
            self.study,
            ask=self._ask,
            seeds_in_flight=self.settings.seeds_in_flight,
            startup_seeds=self.settings.startup_seeds,
            racing=self.settings.pruner != "none",
            on_trial_done=self._on_trial_done,
        )
        self.new_trials = 0
        self.trial_seconds = 0.0
        self.failures = 0
        self.seed_runs = 0
        self.env_steps = 0
        self.seeds_per_trial: dict[int, int] = {}
        self.grid_note = ""
        self.progress = None
        self.deadline = None if options.timeout_s is None else time.monotonic() + options.timeout_s
        self.timed_out = False

    def run(self) -> SweepSummary:
        options, study, tracker = self.options, self.study, self.tracker
        tracker.attempt("closing runs of dead workers", lambda: repair(study, tracker))
        started = time.perf_counter()
        self.progress = _progress(options, finished_count(study))
        stop = _StopRequest()
        self.race.check_stop = stop.check
        interrupted, verdict = 0, None
        try:
            with self.heartbeats:
                self._train(stop)
            self.live.flush()
            notes = _log_best_agent(study, tracker) + ([self.grid_note] if self.grid_note else [])
            if self.timed_out:
                notes.append(
                    f"--timeout: stopped asking new trials after {options.timeout_s / 60:g} min; the study holds "
                    f"{finished_count(study)} of {self.settings.n_trials} finished trials (run the same command "
                    "again to go on)"
                )
            if tracker.failed_calls:  # a run whose closing call was skipped during an outage: close it now
                tracker.attempt("closing runs", lambda: repair(study, tracker), force=True)
            verdict = self._verdict(stop)
            tracker.attempt("closing the study run", lambda: tracker.finish_study("FINISHED"), force=True)
        except KeyboardInterrupt:
            interrupted = stop.signum or signal.SIGINT
            previous = _set_stop_handlers(signal.SIG_IGN)  # a further Ctrl-C (or SIGTERM) must not cut cleanup short
            try:
                fail_unfinished(study, self.race.runs, lambda run: self._on_trial_done(run, "KILLED"))
                # A forced stop can land while a finished trial was being logged: close runs from Optuna's record.
                tracker.attempt("closing runs", lambda: repair(study, tracker), force=True)
                tracker.attempt("closing the study run", lambda: tracker.finish_study("KILLED"), force=True)
            finally:
                _set_stop_handlers(previous)
            notes = []
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            _close_after_store_failure(study, self.race.runs, tracker, self._on_trial_done)
            raise StoreFull(disk_full_message(exc, options.storage)) from None
        except JournalPartialLine:  # another process's write was cut off: stop before anything lands on it
            _close_after_store_failure(study, self.race.runs, tracker, self._on_trial_done)
            raise
        finally:
            stop.release()
            self.progress.close()
        if tracker.failed_calls:
            notes.append(
                f"MLflow tracking failed or was skipped {tracker.failed_calls} times; "
                + redact(f"`{tracker.sync_hint}` re-creates the missing runs")
            )
        counts = {state.name: len(study.get_trials(deepcopy=False, states=(state,))) for state in _COUNTED}
        best = best_trial(study)
        return SweepSummary(
            study_name=options.study_name,
            counts=counts,
            new_trials=self.new_trials,
            seconds=time.perf_counter() - started,
            tracking_seconds=dict(tracker.seconds),
            trial_seconds=self.trial_seconds,
            best_number=best.number if best else None,
            best_value=best.value if best else None,
            best_params=dict(best.params) if best else {},
            experiment_id=tracker.experiment_id,
            interrupted=interrupted,
            notes=notes,
            seed_runs=self.seed_runs,
            env_steps=self.env_steps,
            seeds_per_trial=dict(self.seeds_per_trial),
            verdict=verdict,
        )

    def _verdict(self, stop: _StopRequest) -> Any:
        """The winner and the book on unseen seeds (`verdict.py`), stored in the study and on its parent run."""
        from sweeps.run.verdict import decide

        n = self.settings.validate_seeds
        if not self.options.verdict or n < 1 or best_trial(self.study) is None:
            return None
        stop.check()
        self.progress.close()  # the verdict's line must not land inside the bar
        if self.options.progress:
            print(f"verdict: training the winner and the book on {n} unseen seeds ...", file=sys.stderr, flush=True)
        verdict = decide(self.study, n, shape=self.options.sweep.stream_shape())
        if verdict is not None:
            self.tracker.attempt(
                "logging the verdict",
                lambda: self.tracker.log_study_result(
                    {TAG_VERDICT: verdict.line, TAG_VERDICT_OUTCOME: verdict.outcome}, verdict.metrics()
                ),
            )
        return verdict

    def _train(self, stop: _StopRequest) -> None:
        """Stream until the study holds its budget; between streams (the source ran dry while trials of other
        workers still run) look again now and then, since a dead worker's trial comes back as a retry."""
        from dqn_core.stream import StreamError, train_stream

        shape = self.options.sweep.stream_shape()
        while finished_count(self.study) < self.settings.n_trials:
            stop.check()
            self.race.budget_spent = False
            try:
                trained = train_stream(
                    self.race.next_item,
                    shape=shape,
                    slots=self.settings.slots,
                    on_episode=self.race.on_episode,
                    on_done=self._on_seed_done,
                )
            except StreamError as exc:  # a store failure inside a callback: handled as if raised here
                raise (exc.__cause__ or exc) from None
            if finished_count(self.study) >= self.settings.n_trials:
                break
            if _grid_used_up(self.study, self.options) and not _running(self.study):
                self.grid_note = (
                    f"the grid of {_grid_size(self.options)} points is used up: the study holds "
                    f"{finished_count(self.study)} finished trials, fewer than the {self.settings.n_trials} asked for"
                )
                break
            if self.timed_out:
                break
            if not trained:
                time.sleep(min(IDLE_POLL_S, self.options.heartbeat_interval))  # the rest runs elsewhere

    def _on_seed_done(self, item: Any, result: Any) -> None:
        self.seed_runs += 1
        self.env_steps += result.total_env_steps
        self.race.on_done(item, result)
        run, seed = item.tag
        self.live.seed_done(run.run_id, seed, run.values, trial_over=run.state != "RUNNING")

    def _ask(self) -> TrialRun | None:
        """Under the study's lock: fail dead workers' trials (they are re-queued), then ask one trial if the budget
        allows. The new trial gets its first heartbeat before the lock is released, so no other worker can see it
        silent. Sampled parameters that make an invalid config fail the trial, and the next one is asked."""
        while True:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.timed_out = True  # the trials running now finish; the stream drains
                return None
            with budget_lock(self.options.storage, self.storage, self.options.study_name):
                fail_stale_trials(self.study)
                if committed_count(self.study) >= self.settings.n_trials or _grid_used_up(self.study, self.options):
                    return None
                with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat
                    warnings.simplefilter("ignore", UserWarning)
                    trial = self.study.ask()
                self.heartbeats.add(trial_id(trial))
            run = self._prepare(trial)
            if run is not None:
                return run
            self.failures += 1
            if self.failures > 2 * self.settings.n_trials + 10:
                raise ConfigError("too many sampled configurations were invalid; check the search space")

    def _prepare(self, trial: optuna.Trial) -> TrialRun | None:
        """Sample the trial's parameters and open its MLflow run (when tracking is up); an invalid sample FAILs."""
        options, tracker = self.options, self.tracker
        params = {spec.name: spec.suggest(trial) for spec in options.sweep.space}
        try:
            config = options.sweep.config_for(params)
        except ConfigError as exc:
            trial.set_user_attr(TRIAL_FAIL_REASON, str(exc))
            self.study.tell(trial, state=TrialState.FAIL)
            self.heartbeats.discard(trial_id(trial))
            return None
        baseline = trial.user_attrs.get(TRIAL_BASELINE) == BOOK
        run = TrialRun(trial=trial, config=config, max_seeds=self.settings.max_seeds, baseline=baseline)
        trial.set_user_attr(TRIAL_WORKER, worker_name())
        tags = {TAG_SAMPLER: self.settings.sampler, TAG_PRUNER: self.settings.pruner}
        trial.set_user_attr(TRIAL_TRACKING_TAGS, tags)
        searched = [p.name for p in options.sweep.space]
        run.run_id = tracker.attempt(
            f"starting trial {trial.number}",
            lambda: tracker.start_trial(
                trial.number, config.to_dict(), searched, options.seeds, tags={TAG_STUDY: options.study_name, **tags}
            ),
        )
        if run.run_id is not None:
            trial.set_user_attr(TRIAL_RUN_ID, run.run_id)
        return run

    def _on_trial_done(self, run: TrialRun, status_override: str | None = None) -> None:
        self.heartbeats.discard(trial_id(run.trial))
        self.tracker.attempt(
            f"trial {run.number}", lambda: _log_trial(self.tracker, run, self.options, status_override)
        )
        if run.state in ("COMPLETE", "PRUNED"):
            self.new_trials += 1
            self.trial_seconds += run.wall_time_s
            self.seeds_per_trial[run.number] = len(run.values)
            trials = self.study.get_trials(deepcopy=False)  # every worker's: one read for the bar and MLflow
            complete = sum(t.state == TrialState.COMPLETE for t in trials)
            pruned = sum(t.state == TrialState.PRUNED for t in trials)
            self.progress.n = min(complete + pruned, self.settings.n_trials)
            best = _best_value(self.study)
            self.progress.set_postfix_str(f"best={best:g}" if best is not None else "", refresh=True)
            self.live.study_progress(step=complete + pruned, complete=complete, pruned=pruned, best=best)


def _close_after_store_failure(
    study: optuna.Study, runs: list[TrialRun], tracker: StudyTracker, on_trial_done: Callable[..., None]
) -> None:
    """Best effort after a full disk or a cut-off journal: fail this process's running trials, close their runs
    and the study's.

    Whatever cannot be written now (the full store) is put right by the next run: its stale trials are failed and
    retried, and its runs left RUNNING are closed by the `repair` every sweep starts with.
    """
    previous = _set_stop_handlers(signal.SIG_IGN)
    try:
        for run in runs:
            if run.state == "RUNNING":
                with contextlib.suppress(Exception):
                    study.tell(run.trial, state=TrialState.FAIL, skip_if_finished=True)
                run.state = "FAIL"
                with contextlib.suppress(Exception):
                    on_trial_done(run, "FAIL")
        tracker.attempt("closing the study run", lambda: tracker.finish_study("FAILED"), force=True)
    finally:
        _set_stop_handlers(previous)


class _StopRequest:
    """Ctrl-C or SIGTERM asks the sweep to stop at the next safe point (no store write under way); a second signal
    forces it. Both take the same path, so a `kill` or a scheduler's stop leaves no trial or run RUNNING.

    An interrupt in the middle of an SQLite transaction left the MLflow store locked for the cleanup that followed.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum = 0
        self.previous = _set_stop_handlers(self._handle)

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
        _set_stop_handlers(self.previous)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _set_stop_handlers(handler: Any) -> Any:
    """Install one handler for SIGINT and SIGTERM where Python allows it (the main thread); returns the previous
    ones (a tuple, which this function also takes back)."""
    if handler is None:
        return None
    handlers = handler if isinstance(handler, tuple) else (handler,) * len(STOP_SIGNALS)
    try:
        return tuple(signal.signal(sig, h) for sig, h in zip(STOP_SIGNALS, handlers, strict=True))
    except ValueError:  # not the main thread: leave the signals as they are
        return None


def _grid_size(options: SweepOptions) -> int:
    return math.prod(len(spec.grid_values()) for spec in options.sweep.space)


def _grid_used_up(study: optuna.Study, options: SweepOptions) -> bool:
    """The grid sampler has handed out every point and nothing is queued: asking more would repeat a point."""
    if options.study.sampler != "grid":
        return False
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return False
    return len(grid_points_started(study)) >= _grid_size(options)


def _running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


def _log_trial(tracker: StudyTracker, run: TrialRun, options: SweepOptions, status_override: str | None) -> None:
    """Log a finished trial to its run; a failure half-way (an artifact path too long, a full disk) closes the run
    as FAILED instead of leaving it RUNNING, and reaches the user as the one warning line of `attempt`."""
    if run.run_id is None:
        return
    try:
        _log_trial_run(tracker, run, options, status_override)
    except Exception:
        tracker.abandon_trial(run.run_id)
        raise


def _log_trial_run(tracker: StudyTracker, run: TrialRun, options: SweepOptions, status_override: str | None) -> None:
    # Every seed's per-episode curves go to one CSV artifact; complete trials (the ones worth a chart) also get
    # one learning curve as a metric history for MLflow's charts: the median steps over the seeds still playing.
    curves = {"steps_median": median_curve([c.steps for c in run.curves.values()])} if run.state == "COMPLETE" else {}
    summary = summary_metrics(
        value=run.value,
        per_seed=run.per_seed,
        extra={
            "wall_time_s": run.wall_time_s,
            "env_steps": float(run.env_steps),
            "episodes": float(max((len(c.steps) for c in run.curves.values()), default=0)),
            "seeds": float(len(run.values)),
        },
    )
    state = status_override or run.state
    tracker.log_curves(run.run_id, curves, summary, tags={TAG_STATE: state})
    files: dict[str, Callable[[Path], Any]] = {
        "config.yaml": lambda p: artifacts.write_config_yaml(p, run.config.to_dict(), sorted(run.values)),
        CURVES_FILE: lambda p: artifacts.write_curves_csv(p, run.curves),
    }
    tracker.log_files(run.run_id, files)
    tracker.finish_trial(run.run_id, state, tagged=True)


def median_curve(per_seed: list[list[int]]) -> list[float]:
    """Per episode, the median steps over the seeds that played that episode (solved seeds stop early)."""
    length = max((len(steps) for steps in per_seed), default=0)
    return [float(np.median([steps[e] for steps in per_seed if len(steps) > e])) for e in range(length)]


def representative_seed(trial: optuna.trial.FrozenTrial) -> int:
    """The seed whose value is the trial's median: its agent is the one worth watching."""
    per_seed = per_seed_values(trial)
    if not per_seed:
        return 0
    ordered = sorted(per_seed, key=lambda s: (per_seed[s], s))
    return ordered[(len(ordered) - 1) // 2]


def retrain_agent(study: optuna.Study, trial: optuna.trial.FrozenTrial, seed: int) -> tuple[TrainedAgent, int | None]:
    """Re-train one seed of a trial alone; bit-identical to its run inside the sweep's population."""
    from dqn_core.trainer import train

    result = train(trial_config(study, trial), seed=seed)
    return result.agent(), result.episodes_to_solve


def write_replay(
    study: optuna.Study, tracker: StudyTracker, trial: optuna.trial.FrozenTrial, out: Path, *, log_agent: bool
) -> tuple[Path, int, str]:
    """Re-train the trial's representative seed, render a GIF to `out`, log both to the trial's run. An env that
    cannot draw frames (no rgb_array render mode) gets no GIF: its greedy episode is played without one."""
    seed = representative_seed(trial)
    agent, solved_at = retrain_agent(study, trial, seed)
    renders = agent.config.env.renders
    if renders:
        out.parent.mkdir(parents=True, exist_ok=True)
        steps = artifacts.write_episode_gif(out, agent, seed=seed)
    else:
        steps = agent.play(seed=seed).steps
    expected = per_seed_values(trial).get(seed)
    note = ""
    if expected is not None and solved_at is not None and solved_at != expected:
        note = f"warning: re-training seed {seed} solved at {solved_at}, the sweep recorded {expected}"
    run_id = trial.user_attrs.get(TRIAL_RUN_ID)
    if run_id:
        files: dict[str, Callable[[Path], Any]] = (
            {"greedy_episode.gif": lambda p: p.write_bytes(out.read_bytes())} if renders else {}
        )
        if log_agent:
            files[f"agent_seed{seed}.npz"] = agent.save
        tracker.log_files(run_id, files, purpose="best")
        tracker.client.set_tag(run_id, TAG_AGENT_LOGGED, "true")
    return out, steps, note


def _log_best_agent(study: optuna.Study, tracker: StudyTracker) -> list[str]:
    """The best trial's agent and a GIF, to its run, unless already there (workers ending together may both log)."""
    best = best_trial(study)
    if best is None:
        return ["no trial completed, so no best agent was saved"]
    run_id = best.user_attrs.get(TRIAL_RUN_ID)
    if run_id is None:
        return [f"best trial {best.number} has no MLflow run (tracking was down); its agent was not logged"]

    def log() -> list[str]:
        if tracker.client.get_run(run_id).data.tags.get(TAG_AGENT_LOGGED) == "true":
            return []
        with tempfile.TemporaryDirectory() as folder:
            _, steps, note = write_replay(study, tracker, best, Path(folder) / "greedy_episode.gif", log_agent=True)
            _log_learning_curve(study, tracker, best, run_id, Path(folder))
        episode = (
            f"a {steps}-step greedy episode GIF"
            if trial_config(study, best).env.renders
            else f"no GIF ({trial_config(study, best).env_id} draws no rgb_array frames)"
        )
        notes = [f"best trial {best.number}: agent, {episode}, learning curve logged to MLflow"]
        return notes + ([note] if note else [])

    return tracker.attempt("logging the best agent", log) or []


def _log_learning_curve(
    study: optuna.Study, tracker: StudyTracker, best: optuna.trial.FrozenTrial, run_id: str, folder: Path
) -> None:
    """The best trial's learning-curve PNG, drawn from its curves.csv (one picture per sweep: drawing one per trial
    cost ~0.12 s each, most of the tracking budget; every complete trial charts `steps_median` in MLflow)."""
    if CURVES_FILE not in {a.path for a in tracker.client.list_artifacts(run_id)}:
        return
    steps = artifacts.read_curve_steps(Path(tracker.client.download_artifacts(run_id, CURVES_FILE, str(folder))))
    config = trial_config(study, best)
    threshold = config.success_threshold if config.env.return_is_length else None
    title = f"{study.study_name} best trial {best.number}"
    tracker.log_files(
        run_id,
        {"learning_curve.png": lambda p: artifacts.write_learning_curve(p, steps, threshold=threshold, title=title)},
        purpose="best",
    )


def _best_value(study: optuna.Study) -> float | None:
    best = best_trial(study)
    return best.value if best else None


def _progress(options: SweepOptions, already: int):
    from tqdm import tqdm

    return tqdm(
        total=options.study.n_trials,
        initial=min(already, options.study.n_trials),
        desc=options.study_name,
        unit="trial",
        disable=not options.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
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
