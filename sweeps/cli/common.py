"""What every command shares: the parser class and its one-line errors, the option groups several commands take,
and the small steps between parsed arguments and the options objects that check them.

Light imports only: each command's heavy imports happen inside its handler.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from sweeps.stores.locations import DEFAULT_TRACKING_URI
from sweeps.study.schema import StudyOptions, option_help, option_type

EXIT_USAGE = 2
DEFAULT_SWEEP = Path(__file__).parents[1] / "configs" / "default.yaml"


class UsageError(Exception):
    """Raised by argument parsing; becomes one line and exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and an epilog that may be a function: built only when help is shown, so a
    help text drawn from the code (`train`'s config keys import gymnasium) costs nothing to every other command."""

    def error(self, message: str) -> NoReturn:
        """argparse's "argument --seed: invalid int value: 'x'" as every other error reads: the flag, then what
        is wrong with it (`error: --seed: invalid int value: 'x' (see dqn-sweep train --help)`)."""
        raise UsageError(f"{message.removeprefix('argument ')} (see {self.prog} --help)")

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


Commands = Any  # what `ArgumentParser.add_subparsers` returns (argparse._SubParsersAction)


class StoreAlias(argparse.Action):
    """Stores the value like argparse's default action, and the spelling given in `<dest>_flag`: an option with
    an old spelling kept as an alias names, in its errors, the spelling the user typed."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_flag", option_string)


def flag(args: argparse.Namespace, dest: str, primary: str) -> str:
    """The spelling of a `StoreAlias` option the user typed (`primary` when it took its default)."""
    return getattr(args, f"{dest}_flag", None) or primary


def add_study_name(parser: argparse.ArgumentParser, help_text: str, *, required: bool = False) -> None:
    parser.add_argument("--study-name", "--study", dest="study_name", required=required, help=help_text)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage: a journal file (PATH or journal:PATH) or an RDB URL such as postgresql://...",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI (default $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})",
    )


def add_study_options(parser: argparse.ArgumentParser, names: Sequence[str], *, recorded: bool = False) -> None:
    """One flag per `StudyOptions` field, with its help and default, so flags, sweep files and the study record
    cannot drift apart."""
    from dataclasses import fields

    defaults = {spec.name: spec.default for spec in fields(StudyOptions)}
    for name in names:
        default = "the study's value" if recorded else f"file, else {defaults[name]}"
        help_text = option_help(name).replace("%", "%%")  # argparse formats help with %
        parser.add_argument("--" + name.replace("_", "-"), type=option_type(name), help=f"{help_text} ({default})")


def add_liveness_options(parser: argparse.ArgumentParser) -> None:
    """--heartbeat-interval and --grace-period; `sweeps.stores.preflight.check_liveness` checks them."""
    from sweeps.stores.locations import GRACE_PERIOD, HEARTBEAT_INTERVAL

    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=HEARTBEAT_INTERVAL,
        metavar="S",
        help="seconds between heartbeats of a running trial (%(default)s)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=GRACE_PERIOD,
        metavar="S",
        help="a running trial silent this long is failed and retried (%(default)s)",
    )


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="MINUTES",
        help="ask no new trial after this many minutes; the running trials finish, then the run ends normally "
        "(run the command again to go on)",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (it goes to stderr)")


def timeout_s(args: argparse.Namespace) -> float | None:
    """--timeout in seconds; `SweepOptions` checks it."""
    return None if args.timeout is None else args.timeout * 60


def command_line(args: argparse.Namespace) -> str:
    """The command as given to `main`, passwords hidden (the same `redact` as every message): stored in the study."""
    from sweeps.stores.locations import redact

    return redact(" ".join(["dqn-sweep", *args.argv]))


def join_study(args: argparse.Namespace) -> tuple[Any, str]:
    """The existing study named by `worker`, `repair` or `sync`, opened for writing, and the tracking URI."""
    from sweeps.stores.locations import tracking_uri
    from sweeps.stores.preflight import check_liveness, probe_tracking_store

    check_liveness(args.heartbeat_interval, args.grace_period)  # before the storage is opened with them
    from sweeps.study.existing import load_existing_study  # loads Optuna: once the flags are known to be good

    uri = tracking_uri(args.tracking_uri)
    probe_tracking_store(uri, study_name=args.study_name, must_exist=False, writer=True)
    study = load_existing_study(
        args.study_name,
        args.storage,
        args.tracking_uri,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        writable=True,
    )
    return study, uri
