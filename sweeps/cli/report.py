"""`dqn-sweep report`: write a self-contained HTML report of a study."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweeps.cli.common import Commands, add_store_options, add_study_name

HTML = (".html", ".htm")


def add_parser(commands: Commands) -> None:
    report = commands.add_parser(
        "report",
        help="write a self-contained HTML report of a study",
        description="Write one HTML file (plots inline, no external resources): optimization history, parameter "
        "importances, parallel coordinates, parameter effects, top configurations with bootstrap CIs beside the "
        "book, learning curves, held-out validation and the best agent's GIF. Also logged to the study's MLflow "
        "parent run.",
    )
    add_study_name(report, "study (optional if only one)")
    report.add_argument(
        "--out",
        metavar="FILE.html",
        help="output file (reports/<study>.html beside a local mlflow.db, else in the working directory)",
    )
    report.add_argument("--top", type=int, default=5, help="configurations in the comparison table (%(default)s)")
    add_store_options(report)
    report.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from analysis.load import StudyData
    from analysis.report import build_report
    from sweeps.stores.locations import default_report
    from sweeps.stores.preflight import TOP_MAX, bounded, check_output_file
    from sweeps.tracking.report_log import log_report

    bounded("--top", args.top, 1, TOP_MAX)
    if args.out is not None:  # checked before the study is read; the default name needs the study's name
        check_output_file(Path(args.out), "report --out", HTML)
    data = StudyData.open(args.study_name, storage=args.storage, tracking=args.tracking_uri)
    out = Path(args.out) if args.out else default_report(data.tracking_uri, data.name)
    if not args.out:
        check_output_file(out, "report --out", HTML)
    path = build_report(data, out, top=args.top)
    logged = log_report(data.tracking_uri, data.name, path)
    where = "; also logged to the study's MLflow parent run" if logged else " (the study has no MLflow parent run)"
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB){where}")
    return 0
