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
    from dqn_core.errors import shown
    from sweeps.stores.locations import default_report, storage_url, tracking_uri
    from sweeps.stores.output_paths import StoreFiles, refuse_store, write_output
    from sweeps.stores.preflight import TOP_MAX, bounded, check_output_file
    from sweeps.tracking.report_log import log_report

    bounded("--top", args.top, 1, TOP_MAX)
    uri = tracking_uri(args.tracking_uri)
    stores = StoreFiles.of(storage=storage_url(args.storage, uri), tracking=uri)
    if args.out is not None:  # checked before the study is read; the default name needs the study's name
        refuse_store(check_output_file(Path(args.out), "--out", HTML), "--out", stores)
    data = StudyData.open(args.study_name, storage=args.storage, tracking=args.tracking_uri)
    out = Path(args.out) if args.out else default_report(data.tracking_uri, data.name)
    if not args.out:
        refuse_store(check_output_file(out, "--out", HTML), "--out", stores)
    write_output(out, lambda temporary: build_report(data, temporary, top=args.top), option="--out", stores=stores)
    logged = log_report(data.tracking_uri, data.name, out)
    where = "; also logged to the study's MLflow parent run" if logged else " (the study has no MLflow parent run)"
    print(f"wrote {shown(out)} ({out.stat().st_size / 1024:.0f} KiB){where}")
    return 0
