"""Everything a command checks before its first write, so that a rejected command leaves every store untouched.

Each command runs the same phase first: numbers parsed and bounded (`bounded`), names checked (`check_study_name`),
output files checked (`check_output_file`), then both stores probed read-only (`probe_stores`). Only after that
may anything be created: a study, an experiment, a journal, a lock file, a database file or its schema. The checks
before the probes import neither Optuna nor MLflow (nor anything that does), so a rejected flag answers at once.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from pathlib import Path

from dqn_core.errors import ConfigError
from sweeps.stores.extras import require_driver
from sweeps.stores.journal import check_journal
from sweeps.stores.locations import (
    JOURNAL_PREFIX,
    MLFLOW_TABLES,
    OPTUNA_ELSEWHERE,
    OPTUNA_TABLES,
    TRACKING_SERVERS,
    check_sqlite_length,
    check_tracking_uri,
    connect_url,
    first_line,
    sqlite_path,
    sqlite_tables,
)
from sweeps.stores.redaction import redact
from sweeps.stores.tracking_store import probe_tracking

# Study names become MLflow experiment names, search-filter literals, artifact folders and lock keys, so they are
# kept to characters that are safe in all of them, and short enough for any file system (255 bytes per name).
STUDY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
STUDY_NAME_MAX = 100

# Documented maxima (README "Bounds"): far above any sensible sweep, low enough that nothing overflows or
# allocates without limit (a billion seeds made `create_study` run out of memory half-way).
# (Seeds are bounded by `dqn_core.shape.SEED_LIMIT`; the study options' bounds live with them:
# `sweeps.study.schema.StudyOptions`.)
HEARTBEAT_MAX_S = 3_600
GRACE_PERIOD_MAX_S = 7 * 24 * 3_600
TOP_MAX = 1_000
FROM_STUDY_TOP_MAX = 100  # `run --from-study --top K`: queued trials, not evaluations
HOLDOUT_SEEDS_MAX = 1_000


def bounded(option: str, value: int | None, low: int, high: int) -> int | None:
    """`value` if it lies in [low, high] (None passes: the option was not given), else a one-line ConfigError:
    "must be >= LOW" below the range, "must be in [LOW, HIGH]" above it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{option}: must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{option}: must be >= {low}, got {value}")
    if value > high:
        raise ConfigError(f"{option}: must be in [{low}, {high}], got {value}")
    return value


def check_liveness(heartbeat_interval: int, grace_period: int) -> None:
    """--heartbeat-interval and --grace-period: each in range, and a running trial gets at least one heartbeat
    before it counts as dead. The one check for `run` and `worker` (through `SweepOptions`), `repair` and `sync`."""
    bounded("--heartbeat-interval", heartbeat_interval, 1, HEARTBEAT_MAX_S)
    bounded("--grace-period", grace_period, 1, GRACE_PERIOD_MAX_S)
    if grace_period <= heartbeat_interval:
        raise ConfigError(
            f"--grace-period: must exceed --heartbeat-interval, got {grace_period} <= {heartbeat_interval}"
        )


def check_timeout(timeout_s: float | None) -> None:
    """--timeout (already in seconds; None: not given) is a positive, finite time. The one check for `run` and
    `worker` (through `SweepOptions`, and in the CLI before any store is opened)."""
    if timeout_s is not None and not 0 < timeout_s < math.inf:
        raise ConfigError(f"--timeout: must be a positive number of minutes, got {timeout_s / 60:g}")


def check_study_name(name: str) -> str:
    """A name a new study may take: letters, digits, `.`, `_`, `-`, starting with a letter or digit, <= 100."""
    if not name.strip():
        raise ConfigError("study name must not be empty")
    if len(name) > STUDY_NAME_MAX:
        raise ConfigError(f"study name is {len(name)} characters long; at most {STUDY_NAME_MAX} are allowed")
    if not STUDY_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"study name {name[:40]!r} is not allowed: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    return name


def check_output_file(path: Path, option: str, suffixes: tuple[str, ...]) -> Path:
    """Refuse an output path that cannot become a regular file we may write, before any work is done.

    Symlinks are followed (a link to /dev/full is a device). A missing file is probed by creating and removing a
    temporary file in its folder, which also catches folders such as /proc where permission bits lie.
    """
    if path.suffix.lower() not in suffixes:
        raise ConfigError(f"{option} must end in {' or '.join(suffixes)}, got {path}")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(f"{option} {path}: {exc.strerror}") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{option} {path} is a folder; name a file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{option} {path} is not a regular file (a device, pipe or socket)")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{option} {path} is not writable")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise ConfigError(f"{option} {path}: {folder} is not a folder")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write in {folder} ({exc.strerror})") from None
    return path


def _nearest_existing(folder: Path) -> Path:
    folder = folder if str(folder) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def probe_stores(storage: str, tracking: str, *, study_name: str | None, writer: bool, must_exist: bool) -> None:
    """Both stores, read-only: usable, not each other, not mixed up, and (for readers) already there."""
    db, store = sqlite_path(tracking), sqlite_path(storage)
    if db is not None and store is not None and db.resolve() == store.resolve():
        raise ConfigError(f"--storage and --tracking-uri name the same file {db}; give Optuna and MLflow one each")
    probe_tracking_store(tracking, study_name=study_name, must_exist=must_exist, writer=writer)
    probe_storage(storage, writable=writer, must_exist=must_exist)


def probe_storage(url: str, *, writable: bool, must_exist: bool) -> None:
    """An Optuna storage URL, read-only: a sane journal file, or a database without MLflow's tables."""
    if url.startswith(JOURNAL_PREFIX):
        check_journal(Path(url[len(JOURNAL_PREFIX) :]), writable=writable, must_exist=must_exist)
        return
    db = sqlite_path(url)
    if db is not None:
        if db.is_dir():
            raise ConfigError(f"Optuna storage {db} is a folder; name an SQLite file")
        check_sqlite_length(db, "Optuna storage", OPTUNA_ELSEWHERE)
        if not db.exists():
            if must_exist:
                raise ConfigError(f"no Optuna database at {db}; run a sweep first or pass --storage")
            return
        if not db.is_file():
            raise ConfigError(f"Optuna storage {db} is not a regular file")
        tables = sqlite_tables(db)
        if writable:
            check_sqlite_writable(db, "Optuna storage", "pass a writable --storage")
    else:
        tables = _rdb_tables(url)
    if tables & MLFLOW_TABLES:
        raise ConfigError(redact(f"Optuna storage {url} is an MLflow database; give Optuna its own database"))
    if must_exist and not tables & OPTUNA_TABLES:
        raise ConfigError(redact(f"Optuna storage {url} holds no study (no Optuna tables)"))


def probe_tracking_store(uri: str, *, study_name: str | None, must_exist: bool, writer: bool = False) -> None:
    """The MLflow store, read-only: reachable, not an Optuna database, the study's experiment not deleted, and
    writable for a `writer` (a command that logs runs, tags or metrics to it)."""
    db = sqlite_path(uri)
    if db is not None and must_exist and not db.exists():
        raise ConfigError(f"no MLflow store at {db}; run a sweep first or pass --tracking-uri")
    check_tracking_uri(uri)
    if db is not None:
        check_sqlite_length(db, "tracking store", TRACKING_SERVERS)
        if not db.exists():
            if not os.access(db.parent if str(db.parent) else ".", os.W_OK):
                raise ConfigError(f"tracking store {db} cannot be created (its folder is read-only)")
            return
        tables = sqlite_tables(db)
        if tables & OPTUNA_TABLES:
            raise ConfigError(f"tracking store {db} is an Optuna database; give MLflow its own file")
        if writer:
            check_sqlite_writable(db, "tracking store", READ_ONLY_TRACKING)
        if not tables & MLFLOW_TABLES:
            if must_exist:
                raise ConfigError(f"MLflow store {db} is empty (no MLflow tables); run a sweep first")
            return  # MLflow creates its schema once the command is known to be good
    elif uri.startswith(("postgresql", "mysql")) and _rdb_tables(uri, what="MLflow tracking store") & OPTUNA_TABLES:
        raise ConfigError(redact(f"tracking store {uri} is an Optuna database; give MLflow its own database"))
    probe_tracking(uri, study_name=study_name)


READ_ONLY_TRACKING = (
    "pass a writable --tracking-uri (commands that only read it, such as best and report, work as it is)"
)


def check_sqlite_writable(db: Path, what: str, instead: str) -> None:
    """An existing SQLite store a command writes to: the file writable, and its folder too (SQLite creates its
    `-journal` file beside the database for every write). Unchecked, MLflow failed half-way with SQLAlchemy's
    "Query-invoked autoflush" text, after the study and the lock file had been created."""
    folder = db.parent if str(db.parent) else Path(".")
    if not os.access(db, os.W_OK):
        raise ConfigError(f"{what} {db} is read-only; make it writable, or {instead}")
    if not _can_create_in(folder):
        raise ConfigError(
            f"{what} {db} is read-only (its folder {folder} is, and SQLite writes a journal file beside the "
            f"database); make the folder writable, or {instead}"
        )


def _can_create_in(folder: Path) -> bool:
    """Permission bits first, then a nameless temporary file (gone at once): the bits lie on some file systems."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _rdb_tables(url: str, what: str = "Optuna storage") -> set[str]:
    import sqlalchemy

    require_driver(url)
    try:
        engine = sqlalchemy.create_engine(connect_url(url))
    except Exception as exc:
        raise ConfigError(redact(f"cannot open {what} {url}: {first_line(exc)}")) from None
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    except Exception as exc:
        message = "cannot open Optuna storage" if what == "Optuna storage" else "cannot use MLflow tracking store"
        raise ConfigError(redact(f"{message} {url}: {first_line(exc)}")) from None
    finally:
        engine.dispose()
