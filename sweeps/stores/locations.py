"""Where studies and runs live: the MLflow tracking URI and the Optuna storage, with one-line errors.

Defaults are embedded and safe for several local processes: MLflow in `sqlite:///mlflow.db`, Optuna in a journal
file beside it (Optuna's documented choice for parallel workers; SQLite is not). `--storage URL` takes any RDB URL
Optuna supports (PostgreSQL for many machines) or `journal:PATH`.
"""

from __future__ import annotations

import errno
import os
import re
import warnings
from pathlib import Path

from dqn_core.errors import ConfigError
from sweeps.stores.redaction import redact

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
JOURNAL_NAME = "optuna-journal.log"
JOURNAL_PREFIX = "journal:"
ARTIFACT_FOLDER = "mlruns"  # beside a local mlflow.db: mlruns/<study>/ holds a study's artifacts


def tracking_uri(cli_value: str | None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded default."""
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    return None


def store_folder(tracking: str) -> Path:
    """The folder of a local SQLite tracking store, else the working directory: where a sweep's other files go by
    default, so they travel with mlflow.db whatever folder a command runs in."""
    db = sqlite_path(tracking)
    return db.parent if db is not None else Path.cwd()


def default_journal(tracking: str) -> Path:
    """The journal file sits beside mlflow.db, so the two stores of a sweep travel together."""
    return store_folder(tracking) / JOURNAL_NAME


def default_report(tracking: str, study_name: str) -> Path:
    """`reports/<study>.html` beside mlflow.db, not in whatever folder `report` runs in."""
    return store_folder(tracking) / "reports" / f"{study_name}.html"


def storage_url(cli_value: str | None, tracking: str) -> str:
    """The Optuna storage the user means, as a URL we can show in tags and messages (password redacted there)."""
    if cli_value:
        if "://" not in cli_value and not cli_value.startswith(JOURNAL_PREFIX):
            return JOURNAL_PREFIX + cli_value  # a bare path is a journal file, as Optuna's CLI and dashboard take it
        return cli_value
    return JOURNAL_PREFIX + str(default_journal(tracking))


def check_tracking_uri(uri: str) -> None:
    """Fail early, in one line, where a local store cannot be written (reads nothing but file metadata)."""
    db = sqlite_path(uri)
    if db is not None:
        folder = db.parent if str(db.parent) else Path(".")
        if not folder.resolve().is_dir():
            raise ConfigError(f"tracking store folder does not exist: {folder}")
        if db.is_dir():
            raise ConfigError(f"tracking store {db} is a folder; name an SQLite file such as {db / 'mlflow.db'}")
        if db.exists() and not db.is_file():
            raise ConfigError(f"tracking store {db} is not a regular file")
        if db.exists() and db.stat().st_size > 0 and not _looks_like_sqlite(db):
            raise ConfigError(f"tracking store {db} exists but is not an SQLite database")
    elif not re.match(r"^(https?|postgresql(\+\w+)?|mysql(\+\w+)?|sqlite|file|databricks)://", uri) and not (
        uri.startswith("/") or uri.startswith(".")
    ):
        raise ConfigError(redact(f"unsupported tracking URI '{uri}'"))


HEARTBEAT_INTERVAL = 60  # seconds between heartbeats of a running trial
GRACE_PERIOD = 180  # a RUNNING trial silent for longer is failed and retried


def open_optuna_storage(
    url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL, grace_period: int = GRACE_PERIOD, writable: bool = True
):
    """An Optuna storage object for `url` with heartbeats and a retry of dead trials (see `heartbeats.py`).

    Every failure becomes a one-line ConfigError without the password.
    """
    import optuna

    from sweeps.stores import heartbeats
    from sweeps.stores.extras import require_driver
    from sweeps.stores.journal import check_journal
    from sweeps.stores.journal_backend import GuardedJournalFileBackend

    try:
        if url.startswith(JOURNAL_PREFIX):
            path = Path(url[len(JOURNAL_PREFIX) :])
            check_journal(path, writable=writable, must_exist=False)  # commands check existence in preflight
            try:
                return heartbeats.HeartbeatJournalStorage(
                    GuardedJournalFileBackend(str(path)),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    stale_callback=heartbeats.retry_callback(),
                )
            except ValueError as exc:  # json.JSONDecodeError included
                raise ConfigError(f"Optuna journal {path} is corrupt: {first_line(exc)}") from None
        require_driver(url)
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and exactly what we want
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return heartbeats.HeartbeatRDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=heartbeats.retry_callback(),
            )
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(redact(f"cannot open Optuna storage {url}: {first_line(exc)}")) from None


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


class StoreFull(ConfigError):
    """A store's disk is full (or a file-size limit is reached): the sweep stopped; resuming after freeing space
    is safe (a journal cut mid-line is refused until `dqn-sweep repair --journal` has cut the partial line)."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_message(exc: OSError, store: str | None = None) -> str:
    """One line for a full disk; `store` names where the writes were going when the error carries no file name."""
    target = exc.filename or store
    where = f" writing {redact(str(target))}" if target else ""
    return (
        f"disk full{where} ({exc.strerror}): stopped, finished trials are kept; free space, then run the same "
        "command again to resume (if it says the journal ends in a partial line, `dqn-sweep repair --journal` first)"
    )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: errors reach users as one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _looks_like_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


OPTUNA_TABLES = frozenset({"studies", "trials"})
MLFLOW_TABLES = frozenset({"experiments", "runs"})


def sqlite_tables(path: Path) -> set[str]:
    """Table names of an existing SQLite file, read through a read-only connection (nothing is created)."""
    import sqlite3

    if path.stat().st_size == 0:
        return set()
    if not _looks_like_sqlite(path):
        raise ConfigError(f"{path} exists but is not an SQLite database")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read SQLite database {path}: {exc}") from None
