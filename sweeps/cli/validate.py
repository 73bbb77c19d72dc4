"""`dqn-sweep validate`: re-train the top configurations and the book on held-out seeds."""

from __future__ import annotations

import argparse

from sweeps.cli.common import Commands, add_store_options, add_study_name


def add_parser(commands: Commands) -> None:
    validate = commands.add_parser(
        "validate",
        help="re-train the top configurations and the book on held-out seeds",
        description="Re-train the study's top complete trials and the book default on seeds no trial used "
        "(10000, 10001, ...), all as one population; log one MLflow run per configuration and print the held-out "
        "medians with bootstrap 95% CIs beside the in-sweep values.",
    )
    add_study_name(validate, "study (optional if only one)")
    validate.add_argument("--top", type=int, default=3, help="how many of the best trials (%(default)s)")
    validate.add_argument("--seeds", type=int, default=10, help="held-out seeds per configuration (%(default)s)")
    add_store_options(validate)
    validate.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import pandas as pd

    from sweeps.run.validation import validate
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.preflight import HOLDOUT_SEEDS_MAX, TOP_MAX, bounded, probe_tracking_store
    from sweeps.study.existing import load_existing_study
    from sweeps.tracking.tracker import StudyTracker

    bounded("--top", args.top, 1, TOP_MAX)
    bounded("--seeds", args.seeds, 1, HOLDOUT_SEEDS_MAX)
    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    uri = tracking_uri(args.tracking_uri)
    probe_tracking_store(uri, study_name=study.study_name, must_exist=True)
    tracker = StudyTracker(uri, study.study_name, tags={})
    print(
        f"validating the top {args.top} trials of '{study.study_name}' and the book on {args.seeds} held-out seeds ..."
    )
    table = pd.DataFrame(validate(study, tracker, top=args.top, seeds=args.seeds))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
    return 0
