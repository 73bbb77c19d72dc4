"""An exact trial budget across processes: count and ask while holding a lock that every worker of the study takes.

Without it, two workers that both count N-1 committed trials both ask, and the study ends with N+1. The lock is
held only while stale trials are failed, committed trials counted and new ones asked (milliseconds), and it dies
with its holder: a PostgreSQL transaction-level advisory lock (the session also ends after an idle timeout, in case
the holder's machine vanishes) or `flock` on a file beside the journal or SQLite file. Other databases get no lock
(the budget may then overshoot by up to one batch per worker; the README says so).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from sweeps.stores.locations import JOURNAL_PREFIX, sqlite_path

LOCK_SUFFIX = ".budget-lock"
PG_IDLE_TIMEOUT = "120s"  # far above the time an ask takes; frees the lock if its holder disappears


def lock_key(study_name: str) -> int:
    """A stable signed 64-bit key per study for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def budget_lock(storage_url: str, storage, study_name: str) -> Iterator[None]:
    if storage_url.startswith(JOURNAL_PREFIX):
        with _file_lock(Path(storage_url[len(JOURNAL_PREFIX) :] + LOCK_SUFFIX)):
            yield
        return
    engine = getattr(storage, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        with _pg_lock(engine, lock_key(study_name)):
            yield
        return
    db = sqlite_path(storage_url)
    if db is not None:
        with _file_lock(Path(str(db) + LOCK_SUFFIX)):
            yield
        return
    yield


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _pg_lock(engine, key: int) -> Iterator[None]:
    import sqlalchemy

    with engine.begin() as conn:  # the commit at the end of the block releases the lock
        conn.execute(sqlalchemy.text(f"SET LOCAL idle_in_transaction_session_timeout = '{PG_IDLE_TIMEOUT}'"))
        conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        yield
