"""Optional dependencies (pyproject's extras): a missing one is a one-line error naming the extra to install.

Checked before anything is written, so a sweep that cannot run leaves no journal, database or MLflow store behind.
"""

from __future__ import annotations

import importlib

from dqn_core.errors import ConfigError

PACKAGE = "dqn-sweep"


class MissingExtra(ConfigError):
    """An optional package is not installed (or cannot be imported); the CLI prints it as one line, exit code 2."""


def require(module: str, extra: str, *, what: str) -> None:
    """Import `module` or raise MissingExtra saying which extra of dqn-sweep provides it; `what` is what needs it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{what} needs the optional package '{module}': pip install '{PACKAGE}[{extra}]'") from None


def require_driver(url: str) -> None:
    """The database driver for an RDB URL, where one of our extras provides it: a plain `postgresql://` (SQLAlchemy
    >= 2.1 maps it to psycopg 3) or `postgresql+psycopg://`. Other drivers fail later in SQLAlchemy, in one line."""
    if url.split("://", 1)[0] in ("postgresql", "postgresql+psycopg"):
        require("psycopg", "postgres", what="a postgresql:// store")
