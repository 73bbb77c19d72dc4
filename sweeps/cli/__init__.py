"""`dqn-sweep`: the command line. `main(argv) -> int` so tests drive it in-process.

One module per command (`train`, `run`, `worker`, `reconcile` for `repair` and `sync`, `best`, `replay`,
`validate`, `report`), each with `add_parser(commands)` and its handler; `common` holds the parser class, the
shared option groups and the exit codes. The CLI parses and calls: every input check lives in the options objects
(`StudyOptions`, `SweepOptions`) or in `sweeps.stores.preflight`.

Heavy imports (TensorFlow, Optuna, MLflow, pandas) happen inside the handlers, so `--help` and argument errors are
instant. Every user error ends as one line on stderr and exit code 2; no traceback. Output cut short by its reader
(`dqn-sweep best | head -1`) ends the command quietly, as SIGPIPE ends other Unix tools (exit 128 + SIGPIPE).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from sweeps.cli import best, reconcile, replay, report, run, train, validate, worker
from sweeps.cli.common import DEFAULT_SWEEP, EXIT_USAGE, Parser, UsageError

__all__ = ["DEFAULT_SWEEP", "EXIT_USAGE", "UsageError", "build_parser", "main"]

COMMANDS = (train, run, worker, reconcile, best, replay, validate, report)  # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dqn-sweep",
        description="Hyperparameter sweeps and experiment tracking for the book's CartPole DQN.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="<command>", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dqn_core.errors import ConfigError

    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.argv = argv
        _relocate_store(args)
        code = int(args.handler(args))
        sys.stdout.flush()  # a reader that went away is found here, not in the interpreter's flush at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # one format: `error: <flag or key>: <what is wrong>`
        return EXIT_USAGE
    except OSError as exc:
        from sweeps.stores.locations import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        print(f"error: {disk_full_message(exc)}", file=sys.stderr)  # before the sweep loop: nothing to close
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at /dev/null, so that the interpreter's flush at exit
    does not raise again (the recipe of the Python docs' "Note on SIGPIPE"). Python ignores SIGPIPE, so without
    this a `| head` ended in a BrokenPipeError traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file (a test's capture): nothing is flushed to a pipe at exit
        pass


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dqn-sweep")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _relocate_store(args: argparse.Namespace) -> None:
    """Before any command opens a local tracking store: if its folder was moved or copied, re-point the
    artifact locations MLflow recorded (see `relocation.py`)."""
    if not hasattr(args, "tracking_uri") or getattr(args, "journal", None):
        return
    from sweeps.stores.locations import tracking_uri
    from sweeps.tracking.relocation import relocate_or_warn

    line = relocate_or_warn(tracking_uri(args.tracking_uri))
    if line:
        print(line, file=sys.stderr)
