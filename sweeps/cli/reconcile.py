"""`dqn-sweep repair` and `dqn-sweep sync`: bring the two stores back in line after workers died or the tracking
store was down. One handler: `sync` is everything `repair` does, and more."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.cli.common import (
    Commands,
    UsageError,
    add_liveness_options,
    add_store_options,
    add_study_name,
    join_study,
)

if TYPE_CHECKING:
    from sweeps.run.shutdown import StopRequest
    from sweeps.tracking.recovery import Reconciled

COMMANDS = (
    (
        "repair",
        "fail the trials of dead workers (they are retried) and close the MLflow runs they left RUNNING",
        "Fail RUNNING trials whose heartbeat is older than the grace period (their parameters are queued again) "
        "and close every MLflow run whose Optuna trial is no longer running, as FAILED or FINISHED. Workers do "
        "this when they start; run it by hand when none will start again.",
    ),
    (
        "sync",
        "re-create MLflow runs missing after a tracking outage, from the Optuna storage",
        "Everything `repair` does, then re-create the MLflow run of every finished trial that has none, with "
        "its parameters, tags, value and per-seed results (per-episode curves exist only during a trial, so "
        "re-created runs have none).",
    ),
)


def add_parser(commands: Commands) -> None:
    """Registers both `repair` and `sync`."""
    for name, help_text, description in COMMANDS:
        command = commands.add_parser(name, help=help_text, description=description)
        add_study_name(command, "study (optional if only one)")
        add_store_options(command)
        add_liveness_options(command)
        command.set_defaults(handler=handle)
        if name == "repair":
            command.add_argument(
                "--journal",
                metavar="PATH",
                help="only repair this Optuna journal file: keep a backup, then cut off a partial last line left by "
                "a crash or a full disk (stop its workers first); touches no study and no MLflow run",
            )


def handle(args: argparse.Namespace) -> int:
    """A stop signal (Ctrl-C, SIGTERM) is obeyed between two trials, before the stores open as after: what was
    done is said, the rest is left for the next run, and the exit code is the shell's 128 + signal. A second
    signal forces the stop; a run `sync` was making is then deleted, not left RUNNING."""
    if getattr(args, "journal", None):
        if args.study_name or args.storage or args.tracking_uri:
            raise UsageError("--journal: repairs the file alone; give no study or store options")
        return _repair_journal(Path(args.journal))
    from sweeps.run.shutdown import StopRequest

    stop = StopRequest()
    try:
        return _reconcile(args, stop)
    finally:
        stop.release()


def _reconcile(args: argparse.Namespace, stop: StopRequest) -> int:
    from sweeps.tracking.recovery import repair, sync
    from sweeps.tracking.tracker import StudyTracker

    study, uri = join_study(args)
    stop.check()  # a stop while the stores opened
    tracker = StudyTracker(uri, study.study_name, tags={})
    if args.command == "sync":
        done = sync(study, tracker, stop.check)
        print(synced_line(study.study_name, done))
    else:
        done = repair(study, tracker, stop.check)
        print(repaired_line(study.study_name, done))
    if done.stopped:
        print(f"{args.command} stopped before it was done; run it again to finish", file=sys.stderr)
        return 128 + stop.signum
    return 0


def repaired_line(study_name: str, done: Reconciled) -> str:
    """What `repair` did, and what it leaves to `sync`: the two commands' lines differ where the commands do."""
    return (
        f"study '{study_name}': repair: {len(done.failed_stale)} stale trials failed and re-queued, "
        f"{len(done.closed)} runs closed (MLflow runs left RUNNING after their trial ended); runs missing after an "
        "outage were not looked for: `dqn-sweep sync` re-creates them"
    )


def synced_line(study_name: str, done: Reconciled) -> str:
    """What `sync` did: `repair`'s work, then the runs it re-created from Optuna."""
    return (
        f"study '{study_name}': sync: {len(done.failed_stale)} stale trials failed and re-queued, "
        f"{len(done.closed)} runs closed, {len(done.created)} runs re-created from Optuna (finished trials that "
        "had no MLflow run); every complete and pruned trial now has its run"
        + ("; the study's parent run, left RUNNING, is closed" if done.parent_closed else "")
    )


def _repair_journal(path: Path) -> int:
    from sweeps.stores.journal import repair_journal

    backup, cut = repair_journal(path)
    if backup is None:
        print(f"Optuna journal {path} ends cleanly; nothing to repair")
    else:
        print(f"Optuna journal {path}: cut a partial last line of {cut} bytes; the full file was kept as {backup}")
    return 0
