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
from urllib.parse import parse_qs, quote, unquote

from dqn_core.errors import ConfigError
from sweeps.stores.redaction import redact

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
JOURNAL_NAME = "optuna-journal.log"
JOURNAL_PREFIX = "journal:"
ARTIFACT_FOLDER = "mlruns"  # beside a local mlflow.db: mlruns/<study>/ holds a study's artifacts


def tracking_uri(cli_value: str | None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded default."""
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


# What may follow the `@` that ends a URL's password: a host (or [IPv6]), a port, a database without `@`, and a
# query of key=value pairs (whose values may hold `@`).
_AFTER_PASSWORD = re.compile(
    r"(?:\[[^\]@/]*\]|[^\s/:?#@\[\]]*)(?::\d*)?(?:/[^?#@]*)?(?:\?(?:[^=&#@]+=[^&#]*(?:&[^=&#@]+=[^&#]*)*)?)?"
)
_USER = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s?#]*:")  # `scheme://user:`: a password follows


def connect_url(url: str) -> str:
    """`url` as handed to SQLAlchemy, Optuna and MLflow: a password typed with a raw `@` percent-encoded.

    SQLAlchemy ends a password at its first `@` and takes the rest for the host, so `postgresql://u:p@ss@db/x`
    could not connect, while `redact` masks what the user typed (up to the last `@`). Here the password ends at
    the first `@` that a host, port, database and query can follow; only a password holding `@` changes (all its
    reserved characters encoded, what is already encoded kept), so every URL that connected before is unchanged.
    Messages, tags and stored command lines keep showing what was typed, through `redact`.
    """
    user = _USER.match(url)
    if user is None:
        return url
    for at in (i for i in range(user.end(), len(url)) if url[i] == "@"):
        if _AFTER_PASSWORD.fullmatch(url, at + 1):
            password = url[user.end() : at]
            if "@" not in password:
                return url
            return url[: user.end()] + quote(unquote(password), safe="") + url[at:]
    return url


# `sqlite[+driver]://` (no host: SQLAlchemy refuses one), then `/` and the database up to an optional `?query`
_SQLITE_URL = re.compile(r"sqlite(?:\+\w+)?://(?P<database>/[^?]*)?(?:\?(?P<query>.*))?", re.DOTALL)
_TRUE = frozenset({"true", "yes", "on", "y", "t", "1"})  # what SQLAlchemy's `asbool` reads as true


def sqlite_path(uri: str) -> Path | None:
    """The file an SQLite URL opens, in every form SQLAlchemy accepts (`sqlite:///rel.db`, `sqlite:////abs.db`,
    `sqlite+pysqlite:///...`, a `?query` after it, a percent-encoded name, a `file:` URI with `uri=true`); None for
    an in-memory database or any other URL. Every check of a local store goes through here: knowing only
    `sqlite:///`, `best --storage sqlite+pysqlite:///new.db` created new.db, and a query became part of the name."""
    match = _SQLITE_URL.fullmatch(uri)
    if match is None or not match["database"]:
        return None
    database = unquote(match["database"][1:])
    query = parse_qs(match["query"] or "")
    if database.startswith("file:") and query.get("uri", [""])[-1].lower() in _TRUE:
        return _sqlite_uri_path(database, query)
    return Path(database) if database and database != ":memory:" else None


def _sqlite_uri_path(filename: str, query: dict[str, list[str]]) -> Path | None:
    """The file of an SQLite URI filename (`file:x.db`, `file:///abs/x.db`); SQLAlchemy passes the remaining query
    on to SQLite, so `mode=memory` makes it a database in memory."""
    if query.get("mode", [""])[-1] == "memory":
        return None
    path = filename[len("file:") :]
    if path.startswith("//"):  # an authority (empty or localhost), then the absolute path
        path = path[path.find("/", 2) :] if "/" in path[2:] else ""
    path = unquote(path)
    return Path(path) if path and path != ":memory:" else None


# SQLite's unix VFS takes paths of at most 512 bytes (MAX_PATHNAME) and opens a database only if its rollback
# journal's name (`-journal` appended) fits too: a longer path fails as "unable to open database file", after
# whatever the command had created before it first touched the file. Linux itself takes 4096 bytes.
SQLITE_MAX_PATH = 512 - len("-journal")


def check_sqlite_length(db: Path, what: str, instead: str) -> None:
    """Refuse, in one line, an SQLite file whose absolute path (symbolic links resolved, as SQLite does) is too
    long for SQLite; `instead` says what to use in its place besides a shorter folder."""
    length = len(os.fsencode(db.resolve()))
    if length > SQLITE_MAX_PATH:
        raise ConfigError(
            f"{what} {db}: its path is too long for SQLite ({length} bytes as an absolute path, at most "
            f"{SQLITE_MAX_PATH}); use a shorter folder, or {instead}"
        )


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


TRACKING_SERVERS = "a server store (--tracking-uri http://HOST:5000 or postgresql://...)"
OPTUNA_ELSEWHERE = "a journal file (--storage journal:PATH) or a server store (--storage postgresql://...)"


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
    elif not re.match(r"^(https?|postgresql(\+\w+)?|mysql(\+\w+)?|sqlite(\+\w+)?|file|databricks)://", uri) and not (
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
                connect_url(url),
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
