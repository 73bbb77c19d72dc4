"""`dqn-sweep replay`: re-train a trial's agent and write a GIF of one greedy episode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweeps.cli.common import Commands, UsageError, add_store_options, add_study_name

GIF = (".gif",)


def add_parser(commands: Commands) -> None:
    replay = commands.add_parser(
        "replay",
        help="re-train a trial's agent and write a GIF of one greedy episode",
        description="Re-train the trial's median seed alone (bit-identical to its run in the sweep), render one "
        "greedy episode headless to a GIF, and log the GIF to the trial's MLflow run.",
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int, metavar="N", help="trial number")
    which.add_argument("--run-id", metavar="ID", help="MLflow run id of the trial")
    add_study_name(replay, "study to read (optional if the storage holds only one)")
    replay.add_argument("--out", default=None, metavar="FILE.gif", help="where to write the GIF (replay-<N>.gif)")
    add_store_options(replay)
    replay.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from dqn_core.errors import shown
    from sweeps.run.replay import write_replay
    from sweeps.stores.locations import storage_url, tracking_uri
    from sweeps.stores.output_paths import StoreFiles, refuse_store
    from sweeps.stores.preflight import check_output_file, probe_tracking_store
    from sweeps.study.existing import find_trial, load_existing_study
    from sweeps.study.schema import trial_config
    from sweeps.tracking.tracker import StudyTracker

    uri = tracking_uri(args.tracking_uri)
    stores = StoreFiles.of(storage=storage_url(args.storage, uri), tracking=uri)
    if args.out is not None:  # checked before the study is read; the default name needs the trial's number
        refuse_store(check_output_file(Path(args.out), "--out", GIF), "--out", stores)
    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    trial = find_trial(study, number=args.trial, run_id=args.run_id)
    config = trial_config(study, trial)
    if not config.env.renders:
        raise UsageError(f"--out: {config.env_id} draws no rgb_array frames, so there is no GIF to write")
    out = Path(args.out or f"replay-{trial.number}.gif")
    if args.out is None:
        refuse_store(check_output_file(out, "--out", GIF), "--out", stores)
    probe_tracking_store(uri, study_name=study.study_name, must_exist=True)
    tracker = StudyTracker(uri, study.study_name, tags={})
    path, steps, note = write_replay(study, tracker, trial, out, log_agent=False, stores=stores)
    print(f"trial {trial.number}: wrote {shown(path)} ({steps}-step greedy episode) and logged it to its MLflow run")
    if note:
        print(note, file=sys.stderr)
    return 0
