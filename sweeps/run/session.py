"""Opening a sweep's study: find it or create it under the budget lock, check that it was made from the same sweep,
and open its MLflow side. Nothing is created before the preflight passed, and a study with its sweep hash is
complete (the hash is written last), so four `run`s racing to create one study end with one complete study.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import warnings
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from dqn_core.errors import ConfigError
from sweeps.run.options import SweepOptions
from sweeps.stores.budget import budget_lock
from sweeps.stores.locations import first_line, open_optuna_storage, redact
from sweeps.stores.preflight import probe_stores
from sweeps.study.schema import (
    ATTR_BASE_CONFIG,
    ATTR_COMMAND,
    ATTR_DEFINITION,
    ATTR_OPTIONS,
    ATTR_SEEDS,
    ATTR_SWEEP_FILE,
    ATTR_SWEEP_HASH,
    BOOK,
    TRIAL_BASELINE,
    record,
)
from sweeps.study.space import SweepFile
from sweeps.study.strategies import make_pruner, make_sampler
from sweeps.study.warmstart import enqueue
from sweeps.tracking.tags import TAG_PRUNER, TAG_SAMPLER, TAG_STORAGE, TAG_STUDY
from sweeps.tracking.tracker import StudyTracker

OBJECTIVE_NAME = "episodes_to_solve"


@dataclass(frozen=True)
class Session:
    """An opened sweep: the Optuna storage and study, and the study's MLflow side (its parent run is RUNNING)."""

    storage: optuna.storages.BaseStorage
    study: optuna.Study
    tracker: StudyTracker


def open_session(options: SweepOptions) -> Session:
    """Preflight (sampler, pruner, both stores read-only, the study), then find or create the study and its
    MLflow experiment under the study's lock, record this run's options and queue the warm-start trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = options.study
    # Nothing is created before all of it passed (a grid without steps used to fail only after the journal file
    # had been created).
    make_sampler(settings.sampler, seed=settings.seed, space=options.sweep.space)
    make_pruner(settings)
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
        TAG_SAMPLER: settings.sampler,
        TAG_PRUNER: settings.pruner,
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
            sync_hint=(  # pasted as printed, it must reach these very stores
                f"dqn-sweep sync --study-name {options.study_name} --storage {options.storage} "
                f"--tracking-uri {options.tracking_uri}"
            ),
        )
        if not options.join_only:  # only once MLflow took the study too: a refused start records no budget
            try:
                record_run_options(study, options)
            except Exception:  # a full Optuna store, say: the parent run just (re)opened must not stay RUNNING
                tracker.attempt("closing the study run", lambda: tracker.finish_study("FAILED"), force=True)
                raise
        for line in enqueue(study, options.queued):
            print(line, flush=True)
    return Session(storage=storage, study=study, tracker=tracker)


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
    record(study, ATTR_BASE_CONFIG, options.sweep.base.to_dict())
    record(study, ATTR_SEEDS, list(options.seeds))
    record(study, ATTR_DEFINITION, options.sweep.definition)
    study.set_user_attr(ATTR_SWEEP_FILE, options.sweep.path)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(options.sweep.book_params(), user_attrs={TRIAL_BASELINE: BOOK})
    study.set_user_attr(ATTR_SWEEP_HASH, sweep_hash(options.sweep, options.seeds))
    return study


def record_run_options(study: optuna.Study, options: SweepOptions) -> None:
    """What a later `worker` without options uses: this run's study options (budget, seeds, sampler, pruner...)."""
    record(study, ATTR_COMMAND, options.command_line)
    record(study, ATTR_OPTIONS, options.study.to_dict())


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def committed_count(study: optuna.Study) -> int:
    """Finished trials plus those running anywhere: what the budget has already handed out."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)))
