"""`dqn-sweep best`: show the best trial of a study, as a table or as a trainer config."""

from __future__ import annotations

import argparse
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
        choices=("table", "yaml"),
        default="table",
        help="table (default), or yaml: the best trial's full trainer config, for `train --config`, "
        "`run --base-config` and `run --enqueue` (e.g. `dqn-sweep best --format yaml > best.yaml`)",
    )
    best.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from sweeps.study.existing import best_table, load_existing_study
    from sweeps.study.warmstart import best_config_yaml

    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    if args.format == "yaml":
        sys.stdout.write(best_config_yaml(study))
    else:
        print(best_table(study))
    return 0
