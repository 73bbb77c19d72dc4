"""`dqn-sweep best`: show the best trial of a study, as a table or as a trainer config."""

from __future__ import annotations

import argparse
import json
import sys

from sweeps.cli.common import Commands, add_store_options, add_study_name


def add_parser(commands: Commands) -> None:
    best = commands.add_parser(
        "best",
        help="show the best trial of a study",
        description="Print the best complete trial's value, per-seed values and parameters as a table.",
    )
    add_study_name(best, "study to read (optional if the storage holds only one)")
    add_store_options(best)
    best.add_argument(
        "--format",
        choices=("table", "yaml", "json"),
        default="table",
        help="table (default); yaml: the best trial's full trainer config, for `train --config`, "
        "`run --base-config` and `run --enqueue` (e.g. `dqn-sweep best --format yaml > best.yaml`); json: the "
        "table's content for scripts (study, trial, value, per_seed, censored, mlflow_run_id, verdict, params)",
    )
    best.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from sweeps.stores.locations import check_tracking_uri, tracking_uri
    from sweeps.study.existing import best_summary, best_table, load_existing_study
    from sweeps.study.warmstart import best_config_yaml

    # `best` reads only Optuna, but the tracking URI locates the default journal: the check `report` refuses a
    # journal file given as `sqlite:///...` with (reads file metadata only, so no MLflow store need exist).
    check_tracking_uri(tracking_uri(args.tracking_uri))
    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    if args.format == "yaml":
        sys.stdout.write(best_config_yaml(study))
    elif args.format == "json":
        print(json.dumps(best_summary(study), indent=2))
    else:
        print(best_table(study))
    return 0
