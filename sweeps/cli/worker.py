"""`dqn-sweep worker`: join an existing study and run its trials until its budget is reached."""

from __future__ import annotations

import argparse

from sweeps.cli.common import (
    Commands,
    add_liveness_options,
    add_progress_option,
    add_store_options,
    add_study_name,
    add_study_options,
    add_timeout_option,
    join_study,
    timeout_s,
)


def add_parser(commands: Commands) -> None:
    worker = commands.add_parser(
        "worker",
        help="join an existing study and run its trials until its budget is reached (start any number)",
        description="Join a study that `dqn-sweep run` created: the sweep, seeds, sampler, pruner and budget come "
        "from the study itself, so a worker on another machine needs only the stores. Workers share the budget "
        "exactly, beat heartbeats for their trials, and redo the trials of workers that died.",
        epilog="example: dqn-sweep worker --study-name S --storage postgresql://user@db/optuna "
        "--tracking-uri http://mlflow-host:5000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_name(worker, "the study to join", required=True)
    add_store_options(worker)
    add_study_options(worker, ("n_trials", "slots"), recorded=True)
    add_timeout_option(worker)
    add_progress_option(worker)
    add_liveness_options(worker)
    worker.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Flags first (their bounds, the timeout; liveness in `join_study`), before Optuna is imported or a store
    opened; the study's recorded options are merged with them afterwards (`worker_options`, which checks again)."""
    from sweeps.stores.preflight import check_timeout
    from sweeps.study.schema import StudyOptions

    StudyOptions().replace(as_flags=True, n_trials=args.n_trials, slots=args.slots)  # per-flag bounds only
    check_timeout(timeout_s(args))
    study, uri = join_study(args)

    from sweeps.cli.outcome import print_outcome
    from sweeps.run.options import worker_options
    from sweeps.run.sweep import run_sweep
    from sweeps.stores.locations import storage_url

    options = worker_options(
        study,
        storage=storage_url(args.storage, uri),
        tracking_uri=uri,
        n_trials=args.n_trials,
        slots=args.slots,
        progress=not args.no_progress,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        timeout_s=timeout_s(args),
    )
    return print_outcome(run_sweep(options), uri, options.storage)
