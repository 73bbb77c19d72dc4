"""`dqn-sweep run`: run (or resume) a sweep, then the verdict against the book."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sweeps.cli.common import (
    DEFAULT_SWEEP,
    Commands,
    StoreAlias,
    UsageError,
    add_liveness_options,
    add_progress_option,
    add_store_options,
    add_study_name,
    add_study_options,
    add_timeout_option,
    command_line,
    flag,
    timeout_s,
)
from sweeps.stores.locations import DEFAULT_TRACKING_URI, JOURNAL_NAME
from sweeps.study.schema import PRUNERS, SAMPLERS, option_names


def add_parser(commands: Commands) -> None:
    run = commands.add_parser(
        "run",
        help="run (or resume) an Optuna sweep tracked in MLflow, then the verdict against the book",
        description="Run a hyperparameter sweep. Seeds are the budget: every trial trains seeds 0, 1, 2, ... in one "
        "streaming population, each finished seed is reported to Optuna, the WilcoxonPruner stops trials that are "
        "worse than the best over common seeds, and a surviving trial trains up to --max-seeds seeds; its value is "
        "the median episodes to five consecutive successes (lower is better). At the end the winner and the book "
        "train on --validate-seeds unseen seeds and a paired test gives the verdict. Running the same command again "
        "resumes the study: --n-trials is the total number of finished (complete + pruned) trials, not an "
        "increment. Options given here override the sweep file's `study:` section.",
        epilog=f"samplers: {', '.join(SAMPLERS)}\npruners: {', '.join(PRUNERS)}\n"
        f"defaults: MLflow store {DEFAULT_TRACKING_URI} (or $MLFLOW_TRACKING_URI), Optuna journal file "
        f"'{JOURNAL_NAME}' beside it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", default=str(DEFAULT_SWEEP), metavar="SWEEP.yaml", help="sweep file (%(default)s)")
    add_study_name(run, "Optuna study and MLflow experiment name (the file's stem)")
    add_store_options(run)
    add_study_options(run, option_names())
    run.add_argument("--no-validate", action="store_true", help="skip the verdict at the end")
    _add_warm_start_options(run)
    add_timeout_option(run)
    add_progress_option(run)
    add_liveness_options(run)
    run.set_defaults(handler=handle)


def _add_warm_start_options(run: argparse.ArgumentParser) -> None:
    warm = run.add_argument_group("warm start (the queued configurations are the first trials after the book)")
    warm.add_argument(
        "--base-config",
        metavar="FILE.yaml",
        help="trainer config the search space is applied to, instead of the sweep file's `trainer:` section "
        "(e.g. what `best --format yaml` wrote)",
    )
    warm.add_argument(
        "--enqueue",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE.yaml",
        help="trainer configs to try first, their searched values as they are (each must lie in the search space)",
    )
    warm.add_argument(
        "--from-study",
        metavar="NAME",
        help="try the --top best trials of another study in the same storage first (any search space: values "
        "outside this one are left to the sampler)",
    )
    warm.add_argument(  # `--top` as in `validate`: how many of a study's best trials; --from-top still works
        "--top",
        "--from-top",
        dest="from_top",
        action=StoreAlias,
        type=int,
        default=3,
        metavar="K",
        help="how many of --from-study's best trials (%(default)s; old spelling --from-top)",
    )


def handle(args: argparse.Namespace) -> int:
    """Flags and the sweep file are checked first (`SweepOptions` checks the study options, study name, liveness
    and timeout, and imports neither Optuna nor TensorFlow), so a bad one is refused at once; only then are the
    sweep's heavy modules loaded, and its preflight probes both stores."""
    from dataclasses import replace

    from sweeps.run.options import SweepOptions
    from sweeps.stores.locations import storage_url, tracking_uri
    from sweeps.stores.preflight import FROM_STUDY_TOP_MAX, bounded
    from sweeps.study.space import load_sweep

    if args.from_study:  # before Optuna loads the source study
        bounded(flag(args, "from_top", "--top"), args.from_top, 1, FROM_STUDY_TOP_MAX)
    sweep = load_sweep(args.config)
    if args.base_config:
        from sweeps.study import warmstart  # loads Optuna: only for the flag that needs it

        sweep = warmstart.with_base_config(sweep, args.base_config)
    uri = tracking_uri(args.tracking_uri)
    study_name = args.study_name or sweep.study_name or Path(args.config).stem
    options = SweepOptions(
        sweep=sweep,
        study_name=study_name,
        study=sweep.study.replace(as_flags=True, **{name: getattr(args, name) for name in option_names()}),
        storage=storage_url(args.storage, uri),
        tracking_uri=uri,
        progress=not args.no_progress,
        command_line=command_line(args),
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        verdict=not args.no_validate,
        timeout_s=timeout_s(args),
    )
    queued = _queued(args, sweep, study_name)  # read once the arguments are known to be good
    if queued:
        options = replace(options, queued=tuple(queued))
    from sweeps.cli.outcome import print_outcome
    from sweeps.run.sweep import run_sweep

    return print_outcome(run_sweep(options), uri, options.storage)


def _queued(args: argparse.Namespace, sweep: Any, study_name: str) -> list[Any]:
    """The configurations `--enqueue` and `--from-study` ask to try first, read and checked before any store is
    written."""
    if not args.enqueue and not args.from_study:
        return []
    from sweeps.study import warmstart  # loads Optuna: only when something is queued
    from sweeps.study.existing import load_existing_study

    queued = warmstart.from_files(args.enqueue, sweep)
    if args.from_study:
        if args.from_study == study_name:
            raise UsageError(f"--from-study: names the study being run ('{study_name}')")
        source = load_existing_study(args.from_study, args.storage, args.tracking_uri)
        queued += warmstart.from_study(source, args.from_top, sweep)
    return queued
