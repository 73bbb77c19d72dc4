"""Run a sweep: create or resume the Optuna study, ask trials in batches, train, tell, track, show progress.

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

import optuna
from optuna.trial import TrialState

from dqn_core.agent import TrainedAgent
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from sweeps import artifacts
from sweeps.budget import budget_lock
from sweeps.inspect import best_trial
from sweeps.journal import JournalPartialLine
from sweeps.liveness import Heartbeats, fail_stale_trials
from sweeps.objective import TrialRun, fail_unfinished, run_batch
from sweeps.optuna_adapter import grid_points_started, trial_id
from sweeps.preflight import (
    GRACE_PERIOD_MAX_S,
    HEARTBEAT_MAX_S,
    N_SEEDS_MAX,
    N_TRIALS_MAX,
    SEED_MAX,
    TRIALS_PER_BATCH_MAX,
    bounded,
    check_study_name,
    probe_stores,
)
from sweeps.space import SweepFile, sweep_from_mapping
from sweeps.stores import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    StoreFull,
    disk_full_message,
    first_line,
    is_disk_full,
    open_optuna_storage,
    redact,
)
from sweeps.strategies import PRUNERS, SAMPLERS, make_pruner, make_sampler
from sweeps.tracking import (
    TAG_PRUNER,
    TAG_SAMPLER,
    TAG_STORAGE,
    TAG_STUDY,
    StudyTracker,
    summary_metrics,
)

ATTR_BASE_CONFIG = "base_config"
ATTR_SEEDS = "seeds"
ATTR_SWEEP_HASH = "sweep_hash"
ATTR_COMMAND = "command_line"
ATTR_DEFINITION = "sweep_definition"  # the sweep YAML as parsed: a worker needs no file
ATTR_OPTIONS = "sweep_options"  # n_trials, trials_per_batch, sampler, pruner, seed of the latest `run`
IDLE_POLL_S = 5.0  # a worker with nothing to ask (the rest is running elsewhere) looks again this often
TAG_AGENT_LOGGED = "dqn_sweep.best_agent_logged"


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    sweep: SweepFile
    study_name: str
    n_trials: int
    n_seeds: int
    trials_per_batch: int
    sampler: str
    pruner: str
    seed: int | None
    storage: str
    tracking_uri: str
    progress: bool = True
    command_line: str = ""
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD
    join_only: bool = False  # `worker`: never create the study

    def __post_init__(self) -> None:
        for name, high in (
            ("n_trials", N_TRIALS_MAX),
            ("n_seeds", N_SEEDS_MAX),
            ("trials_per_batch", TRIALS_PER_BATCH_MAX),
            ("heartbeat_interval", HEARTBEAT_MAX_S),
        ):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {value}")
            bounded(name.replace("_", "-"), value, 1, high)
        bounded("grace-period", self.grace_period, 1, GRACE_PERIOD_MAX_S)
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"grace-period ({self.grace_period} s) must exceed heartbeat-interval ({self.heartbeat_interval} s)"
            )
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler '{self.sampler}' (choose from {', '.join(SAMPLERS)})")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"unknown pruner '{self.pruner}' (choose from {', '.join(PRUNERS)})")
        bounded("seed", self.seed, 0, SEED_MAX)
        if self.join_only:  # an existing study keeps the name it has
            if not self.study_name.strip():
                raise ConfigError("study name must not be empty")
        else:
            check_study_name(self.study_name)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every trial trains on the same seeds (common random numbers make trials comparable)."""
        return tuple(range(self.n_seeds))


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


def sweep_hash(sweep: SweepFile, seeds: tuple[int, ...]) -> str:
    """What must not change when a study is resumed: the base config, the space, the seeds."""
    payload = {"base": sweep.base.to_dict(), "space": [repr(p) for p in sweep.space], "seeds": list(seeds)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def open_storage(options: SweepOptions):
    return open_optuna_storage(
        options.storage, heartbeat_interval=options.heartbeat_interval, grace_period=options.grace_period
    )


def sampler_seed(options: SweepOptions, *, creator: bool) -> int | None:
    """The seed as given for the process that creates the study (one process alone is reproducible); mixed with
    the process id for any process that joins or resumes it, so workers do not propose the same points."""
    if options.seed is None or creator:
        return options.seed
    return int.from_bytes(hashlib.sha256(f"{options.seed}:{worker_name()}".encode()).digest()[:4], "big")


def worker_name() -> str:
    """Which process ran a trial (a trial user attribute; also what makes joiners' seeds differ)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def find_study(options: SweepOptions, storage, *, locked: bool = False) -> optuna.Study | None:
    """The existing study if it was made from the same sweep (else a ConfigError); None if there is none.

    A study without its sweep hash is half made: the hash is written last. Outside the budget lock its creator may
    still be writing it (four `run`s racing to create one study), so it is returned unchecked and looked at again
    under the lock; under the lock its creator has died (creation holds the lock), and `run` completes it.
    """
    sampler = make_sampler(options.sampler, seed=sampler_seed(options, creator=False), space=options.sweep.space)
    try:
        existing = optuna.load_study(study_name=options.study_name, storage=storage, sampler=sampler)
    except KeyError:
        return None
    except Exception as exc:
        raise ConfigError(redact(f"cannot read study '{options.study_name}': {first_line(exc)}")) from None
    existing.pruner = make_pruner(options.pruner)
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


_OWN_ATTRS = frozenset({ATTR_BASE_CONFIG, ATTR_SEEDS, ATTR_DEFINITION, "sweep_file"})


def _half_made(study: optuna.Study) -> bool:
    """No more than `_complete_study` writes before the hash: its attributes and the queued baseline. A study made
    by anything else (its own attributes or trials) is never taken over."""
    if not set(study.user_attrs) <= _OWN_ATTRS:
        return False
    trials = study.get_trials(deepcopy=False)
    return all(t.state == TrialState.WAITING and t.user_attrs.get("baseline") == "book" for t in trials)


def create_study(options: SweepOptions, storage) -> optuna.Study:
    study = optuna.create_study(
        storage=storage,
        study_name=options.study_name,
        sampler=make_sampler(options.sampler, seed=sampler_seed(options, creator=True), space=options.sweep.space),
        pruner=make_pruner(options.pruner),
        direction="minimize",
    )
    return _complete_study(study, options)


def _complete_study(study: optuna.Study, options: SweepOptions) -> optuna.Study:
    """Everything a study records about its sweep, and the book's baseline queued as its first trial; the sweep
    hash goes last, so that a study with a hash is complete (see `find_study`). Safe to run again on a study
    whose creator died half-way."""
    study.set_user_attr(ATTR_BASE_CONFIG, options.sweep.base.to_dict())
    study.set_user_attr(ATTR_SEEDS, list(options.seeds))
    study.set_user_attr(ATTR_DEFINITION, options.sweep.definition)
    study.set_user_attr("sweep_file", options.sweep.path)
    if not study.get_trials(deepcopy=False):
        book = TrainConfig()
        baseline = {p.name: getattr(book, p.name) for p in options.sweep.space if p.contains(getattr(book, p.name))}
        study.enqueue_trial(baseline, user_attrs={"baseline": "book"})
    study.set_user_attr(ATTR_SWEEP_HASH, sweep_hash(options.sweep, options.seeds))
    return study


def record_run_options(study: optuna.Study, options: SweepOptions) -> None:
    """What a later `worker` without options uses: this run's budget, batch size, sampler, pruner and seed."""
    study.set_user_attr(ATTR_COMMAND, options.command_line)
    study.set_user_attr(
        ATTR_OPTIONS,
        {
            "n_trials": options.n_trials,
            "trials_per_batch": options.trials_per_batch,
            "sampler": options.sampler,
            "pruner": options.pruner,
            "seed": options.seed,
        },
    )


def worker_options(study: optuna.Study, *, storage: str, tracking_uri: str, **overrides: Any) -> SweepOptions:
    """Options for a process joining `study`: the sweep and settings the study recorded, then `overrides`."""
    definition = study.user_attrs.get(ATTR_DEFINITION)
    if definition is None:
        raise ConfigError(
            f"study '{study.study_name}' does not record its sweep (made by an older dqn-sweep); "
            "join it with `dqn-sweep run --config SWEEP.yaml` instead"
        )
    sweep = sweep_from_mapping(definition, source=f"study '{study.study_name}'")
    recorded = dict(study.user_attrs.get(ATTR_OPTIONS, {}))
    recorded.update({k: v for k, v in overrides.items() if v is not None})
    return SweepOptions(
        sweep=sweep,
        study_name=study.study_name,
        n_trials=recorded.pop("n_trials", 32),
        n_seeds=len(study.user_attrs[ATTR_SEEDS]),
        trials_per_batch=recorded.pop("trials_per_batch", 8),
        sampler=recorded.pop("sampler", "tpe"),
        pruner=recorded.pop("pruner", "none"),
        seed=recorded.pop("seed", None),
        storage=storage,
        tracking_uri=tracking_uri,
        join_only=True,
        **recorded,
    )


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def committed_count(study: optuna.Study) -> int:
    """Finished trials plus those running anywhere: what the budget has already handed out."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)))


def run_sweep(options: SweepOptions) -> SweepSummary:
    """Run (or resume, or join) the study of `options` until it holds its budget of finished trials."""
    try:
        return _run_sweep(options)
    except OSError as exc:  # a full disk before the first trial: nothing runs yet, nothing to close
        if not is_disk_full(exc):
            raise
        raise StoreFull(disk_full_message(exc, options.storage)) from None


def _run_sweep(options: SweepOptions) -> SweepSummary:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Preflight: the sampler and pruner, both stores read-only, then the study; nothing is created before all of
    # it passed (a grid without steps used to fail only after the journal file had been created).
    make_sampler(options.sampler, seed=options.seed, space=options.sweep.space)
    make_pruner(options.pruner)
    probe_stores(
        options.storage,
        options.tracking_uri,
        study_name=options.study_name,
        writer=True,
        must_exist=options.join_only,
    )
    storage = open_storage(options)
    existing = find_study(options, storage)  # reads only: a bad input changes no store
    if existing is None and options.join_only:
        raise ConfigError(f"unknown study '{options.study_name}'")
    tags = {
        TAG_STUDY: options.study_name,
        TAG_SAMPLER: options.sampler,
        TAG_PRUNER: options.pruner,
        TAG_STORAGE: redact(options.storage),
    }
    with budget_lock(options.storage, storage, options.study_name):  # several workers may start at once
        study = find_study(options, storage, locked=True) or create_study(options, storage)
        tracker = StudyTracker(
            options.tracking_uri,
            options.study_name,
            tags=tags,
            searched=[p.name for p in options.sweep.space],
            sweeping=True,
        )
        if not options.join_only:  # only once MLflow took the study too: a refused start records no budget
            try:
                record_run_options(study, options)
            except Exception:  # a full Optuna store, say: the parent run just (re)opened must not stay RUNNING
                tracker.attempt("closing the study run", lambda: tracker.finish_study("FAILED"), force=True)
                raise
    from sweeps.recovery import repair  # recovery builds on this module

    tracker.attempt("closing runs of dead workers", lambda: repair(study, tracker))
    started = time.perf_counter()
    shape = options.sweep.stream_shape()
    progress = _progress(options, finished_count(study))
    new_trials, failures, interrupted, trial_seconds = 0, 0, 0, 0.0
    runs: list[TrialRun] = []
    heartbeats = Heartbeats(storage, options.heartbeat_interval)

    def on_trial_done(run: TrialRun, status_override: str | None = None) -> None:
        nonlocal new_trials, trial_seconds
        heartbeats.discard(trial_id(run.trial))
        tracker.attempt(f"trial {run.number}", lambda: _log_trial(tracker, run, options, status_override))
        if run.state in ("COMPLETE", "PRUNED"):
            new_trials += 1
            trial_seconds += run.wall_time_s
            progress.n = min(finished_count(study), options.n_trials)  # other workers' trials count too
            best = _best_value(study)
            progress.set_postfix_str(f"best={best:g}" if best is not None else "", refresh=True)

    stop = _StopRequest()
    grid_note = ""
    try:
        with heartbeats:
            while finished_count(study) < options.n_trials:
                stop.check()
                trials = _ask_budgeted(study, options, storage, heartbeats)
                if not trials and _grid_used_up(study, options) and not _running(study):
                    grid_note = (
                        f"the grid of {_grid_size(options)} points is used up: the study holds "
                        f"{finished_count(study)} finished trials, fewer than the {options.n_trials} asked for"
                    )
                    break
                if not trials:
                    time.sleep(min(IDLE_POLL_S, options.heartbeat_interval))  # the rest runs elsewhere
                    continue
                runs = _prepare_runs(study, options, tracker, trials, heartbeats)
                if not runs:
                    failures += len(trials)
                    if failures > 2 * options.n_trials + 10:
                        raise ConfigError("too many sampled configurations were invalid; check the search space")
                    continue
                run_batch(study, runs, on_trial_done=on_trial_done, shape=shape, check_stop=stop.check)
        notes = _log_best_agent(study, tracker) + ([grid_note] if grid_note else [])
        tracker.attempt("closing the study run", lambda: tracker.finish_study("FINISHED"), force=True)
    except KeyboardInterrupt:
        interrupted = stop.signum or signal.SIGINT
        previous = _set_stop_handlers(signal.SIG_IGN)  # a further Ctrl-C (or SIGTERM) must not cut the cleanup short
        try:
            fail_unfinished(study, runs, lambda run: on_trial_done(run, "KILLED"))
            # A forced stop can land while a finished trial was being logged: close runs from Optuna's record.
            tracker.attempt("closing runs", lambda: repair(study, tracker), force=True)
            tracker.attempt("closing the study run", lambda: tracker.finish_study("KILLED"), force=True)
        finally:
            _set_stop_handlers(previous)
        notes = []
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        _close_after_store_failure(study, runs, tracker, on_trial_done)
        raise StoreFull(disk_full_message(exc, options.storage)) from None
    except JournalPartialLine:  # another process's write was cut off: stop before anything lands on it
        _close_after_store_failure(study, runs, tracker, on_trial_done)
        raise
    finally:
        stop.release()
        progress.close()
    if tracker.failed_calls:
        notes.append(
            f"MLflow tracking failed or was skipped {tracker.failed_calls} times; "
            f"`dqn-sweep sync --study-name {options.study_name}` re-creates the missing runs"
        )
    counts = {state.name: len(study.get_trials(deepcopy=False, states=(state,))) for state in _COUNTED}
    best = best_trial(study)
    return SweepSummary(
        study_name=options.study_name,
        counts=counts,
        new_trials=new_trials,
        seconds=time.perf_counter() - started,
        tracking_seconds=dict(tracker.seconds),
        trial_seconds=trial_seconds,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        experiment_id=tracker.experiment_id,
        interrupted=interrupted,
        notes=notes,
    )


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
    if options.sampler != "grid":
        return False
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return False
    return len(grid_points_started(study)) >= _grid_size(options)


def _running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _ask_budgeted(study: optuna.Study, options: SweepOptions, storage, heartbeats: Heartbeats) -> list:
    """Under the study's lock: fail dead workers' trials (they are re-queued), then ask what the budget allows.

    Each new trial gets its first heartbeat before the lock is released, so no other worker can see it silent.
    """
    with budget_lock(options.storage, storage, options.study_name):
        fail_stale_trials(study)
        wanted = min(options.trials_per_batch, options.n_trials - committed_count(study))
        trials = []
        for _ in range(max(wanted, 0)):
            if _grid_used_up(study, options):
                break
            with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat ourselves
                warnings.simplefilter("ignore", UserWarning)
                trial = study.ask()
            heartbeats.add(trial_id(trial))
            trials.append(trial)
        return trials


def _prepare_runs(
    study: optuna.Study, options: SweepOptions, tracker: StudyTracker, trials: list, heartbeats: Heartbeats
) -> list[TrialRun]:
    """Sample each trial's parameters and open its MLflow run (when tracking is up); invalid samples FAIL."""
    runs = []
    searched = [p.name for p in options.sweep.space]
    tags = {TAG_STUDY: options.study_name, TAG_SAMPLER: options.sampler, TAG_PRUNER: options.pruner}
    for trial in trials:
        params = {spec.name: spec.suggest(trial) for spec in options.sweep.space}
        try:
            config = options.sweep.config_for(params)
        except ConfigError as exc:
            trial.set_user_attr("fail_reason", str(exc))
            study.tell(trial, state=TrialState.FAIL)
            heartbeats.discard(trial_id(trial))
            continue
        run = TrialRun(trial=trial, config=config, seeds=options.seeds)
        trial.set_user_attr("worker", worker_name())
        trial.set_user_attr("tracking_tags", {TAG_SAMPLER: options.sampler, TAG_PRUNER: options.pruner})
        run.run_id = tracker.attempt(
            f"starting trial {trial.number}",
            lambda t=trial, c=config: tracker.start_trial(t.number, c.to_dict(), searched, options.seeds, tags=tags),
        )
        if run.run_id is not None:
            trial.set_user_attr("mlflow_run_id", run.run_id)
        runs.append(run)
    return runs


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
    curves: dict[str, list[float]] = {}
    for seed, curve in run.curves.items():
        curves[f"seed_{seed}/steps"] = curve.steps
        curves[f"seed_{seed}/epsilon"] = curve.epsilon
        curves[f"seed_{seed}/loss"] = curve.loss
    summary = summary_metrics(
        value=run.value,
        state=run.state,
        per_seed=dict(zip(map(str, run.seeds), run.per_seed, strict=True)),
        bounds={str(s): c.bound for s, c in run.curves.items()},
        extra={
            "wall_time_s": run.wall_time_s,
            "env_steps": float(run.env_steps),
            "episodes": float(max((len(c.steps) for c in run.curves.values()), default=0)),
        },
    )
    tracker.log_curves(run.run_id, curves, summary)
    if any(c.steps for c in run.curves.values()):
        title = f"{options.study_name} trial {run.number} ({run.state.lower()})"
        tracker.log_files(
            run.run_id,
            {
                "config.yaml": lambda p: artifacts.write_config_yaml(p, run.config.to_dict(), run.seeds),
                "learning_curve.png": lambda p: artifacts.write_learning_curve(
                    p,
                    {s: c.steps for s, c in run.curves.items()},
                    threshold=run.config.success_threshold,
                    title=title,
                ),
            },
        )
    tracker.finish_trial(run.run_id, status_override or run.state)


def representative_seed(trial: optuna.trial.FrozenTrial) -> int:
    """The seed whose value is the trial's median: its agent is the one worth watching."""
    per_seed = {int(k): v for k, v in trial.user_attrs.get("episodes_to_solve_per_seed", {}).items()}
    if not per_seed:
        return 0
    ordered = sorted(per_seed, key=lambda s: (per_seed[s], s))
    return ordered[(len(ordered) - 1) // 2]


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> TrainConfig:
    base = TrainConfig.from_mapping(study.user_attrs[ATTR_BASE_CONFIG], source=f"study {study.study_name}")
    return base.replace(**trial.params)


def retrain_agent(study: optuna.Study, trial: optuna.trial.FrozenTrial, seed: int) -> tuple[TrainedAgent, int | None]:
    """Re-train one seed of a trial alone; bit-identical to its run inside the sweep's population."""
    from dqn_core.trainer import train

    result = train(trial_config(study, trial), seed=seed)
    return result.agent(), result.episodes_to_solve


def write_replay(
    study: optuna.Study, tracker: StudyTracker, trial: optuna.trial.FrozenTrial, out: Path, *, log_agent: bool
) -> tuple[Path, int, str]:
    """Re-train the trial's representative seed, render a GIF to `out`, log both to the trial's run."""
    seed = representative_seed(trial)
    agent, solved_at = retrain_agent(study, trial, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = artifacts.write_episode_gif(out, agent, seed=seed)
    expected = trial.user_attrs.get("episodes_to_solve_per_seed", {}).get(str(seed))
    note = ""
    if expected is not None and solved_at is not None and solved_at != expected:
        note = f"warning: re-training seed {seed} solved at {solved_at}, the sweep recorded {expected}"
    run_id = trial.user_attrs.get("mlflow_run_id")
    if run_id:
        files: dict[str, Callable[[Path], Any]] = {
            "greedy_episode.gif": lambda p: p.write_bytes(out.read_bytes()),
        }
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
    run_id = best.user_attrs.get("mlflow_run_id")
    if run_id is None:
        return [f"best trial {best.number} has no MLflow run (tracking was down); its agent was not logged"]

    def log() -> list[str]:
        if tracker.client.get_run(run_id).data.tags.get(TAG_AGENT_LOGGED) == "true":
            return []
        with tempfile.TemporaryDirectory() as folder:
            _, steps, note = write_replay(study, tracker, best, Path(folder) / "greedy_episode.gif", log_agent=True)
        notes = [f"best trial {best.number}: agent and a {steps}-step greedy episode GIF logged to MLflow"]
        return notes + ([note] if note else [])

    return tracker.attempt("logging the best agent", log) or []


def _best_value(study: optuna.Study) -> float | None:
    best = best_trial(study)
    return best.value if best else None


def _progress(options: SweepOptions, already: int):
    from tqdm import tqdm

    return tqdm(
        total=options.n_trials,
        initial=min(already, options.n_trials),
        desc=options.study_name,
        unit="trial",
        disable=not options.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )


def describe_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v or k in ("COMPLETE", "PRUNED"))


def trials_per_minute(n: int, seconds: float) -> float:
    return n / seconds * 60 if seconds > 0 else 0.0
