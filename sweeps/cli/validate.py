"""`dqn-sweep validate`: re-train the top configurations and the book on held-out seeds."""

from __future__ import annotations

import argparse

from sweeps.cli.common import Commands, StoreAlias, add_progress_option, add_store_options, add_study_name, flag


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
    validate.add_argument(  # named as `run --validate-seeds`, the same held-out seeds; --seeds still works
        "--validate-seeds",
        "--seeds",
        dest="validate_seeds",
        action=StoreAlias,
        type=int,
        default=10,
        metavar="N",
        help="held-out seeds per configuration (%(default)s; old spelling --seeds)",
    )
    add_store_options(validate)
    add_progress_option(validate)
    validate.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """The bounds are checked before anything heavy is imported (pandas, Optuna, TensorFlow, MLflow), so a bad
    flag is refused at once; then the stores are probed and the population trained, its progress on stderr."""
    from sweeps.stores.preflight import HOLDOUT_SEEDS_MAX, TOP_MAX, bounded

    seeds_flag = flag(args, "validate_seeds", "--validate-seeds")
    bounded("--top", args.top, 1, TOP_MAX)
    bounded(seeds_flag, args.validate_seeds, 1, HOLDOUT_SEEDS_MAX)

    import pandas as pd

    from sweeps.run.validation import plan_validation, validate
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.preflight import probe_tracking_store
    from sweeps.study.existing import load_existing_study
    from sweeps.tracking.tracker import StudyTracker

    study = load_existing_study(args.study_name, args.storage, args.tracking_uri)
    uri = tracking_uri(args.tracking_uri)
    probe_tracking_store(uri, study_name=study.study_name, must_exist=True, writer=True)
    # what to train, and in how many slots it fits in memory, before the tracker may write anything
    plan = plan_validation(study, top=args.top, seeds=args.validate_seeds)
    tracker = StudyTracker(uri, study.study_name, tags={})
    # stdout is the table alone, for a reader or a file; progress (after the study is known to have a complete
    # trial, so a refusal stays one line) goes to stderr
    rows = validate(plan, tracker, progress=not args.no_progress)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
    return 0
