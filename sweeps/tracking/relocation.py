"""A local sweep folder (mlflow.db, mlruns/, optuna-journal.log) can be copied or moved as a whole, and a copy never
writes into the folder it came from.

MLflow records artifact locations as absolute `file://` URIs (mlflow/mlflow#3144), in the experiment and in every
run: after a move, its client lists no artifacts, and on a copy every write lands in the *original* folder. The
Optuna journal holds no paths. So before a command opens a local store, the artifact locations of this tool's
experiments are re-pointed to the `mlruns/` folder beside the database they are in now, in one SQLite transaction
(a failure changes nothing). After that MLflow's own client and UI find every artifact too.

A database copied without its `mlruns/` has runs whose files are only in the original folder: each such run keeps
reading them there (it is *borrowed*), while its experiment is re-pointed all the same, so new runs land in the
copy. Before anything is logged to a borrowed run, `CopiedRuns.own` copies its files into the copy's `mlruns/` and
re-points it there, so it lists every file it had and the new one is written beside them, never into the original.

This edits MLflow's SQL schema directly, and clears its client's per-process cache of artifact locations through
`mlflow_adapter.py`, which lists both as MLflow internals and whose tests check them on the pinned MLflow.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from dqn_core.errors import ConfigError, shown
from sweeps.stores.locations import ARTIFACT_FOLDER, MLFLOW_TABLES, first_line, sqlite_path, sqlite_tables, store_folder
from sweeps.stores.mlflow_adapter import forget_cached_artifact_repos
from sweeps.tracking.tags import TAG_STUDY


@dataclass(frozen=True)
class Located:
    """A table of MLflow's schema whose rows record where their artifacts are: `<experiment location><suffix>`,
    `{}` in the suffix standing for the row's key (as MLflow's SQL store builds them)."""

    table: str
    key: str
    column: str
    suffix: str


RUNS = Located("runs", "run_uuid", "artifact_uri", "/{}/artifacts")
LOGGED_MODELS = Located("logged_models", "model_id", "artifact_location", "/models/{}/artifacts")


@dataclass(frozen=True)
class Row:
    """One run's (or logged model's) artifact location outside this store's folder, and its place beside it."""

    table: Located
    key: str
    old: str  # URIs
    new: str

    @property
    def borrowed(self) -> bool:
        """Its files are only in the folder the store was copied from (a database copied without its mlruns/): it
        keeps reading them there. Every other row moves: its files are here, or nowhere."""
        return _path(self.old).exists() and not _path(self.new).exists()

    @property
    def origin(self) -> Path:
        """The `mlruns/` folder it is recorded in."""
        return _path(self.old[: -len(self.table.suffix.format(self.key))]).parent


@dataclass(frozen=True)
class Move:
    """What relocation changes in one study: its experiment's location (where new runs go; None when it is in
    place already) and the rows that move; `kept` are the borrowed rows, left reading the original."""

    experiment_id: int
    study: str
    experiment: str | None
    rows: tuple[Row, ...]
    kept: tuple[Row, ...]


def planned_moves(db: Path) -> list[Move]:
    """The studies of this tool with something recorded outside the folder the database is in now.

    A location is re-pointed only when it is `<somewhere>/mlruns/<slug>` (as `tracking.artifact_location` makes
    it), and a run's or model's only when its files are beside the database or nowhere (not `Row.borrowed`)."""
    return [move for move in _plan(db) if move.experiment or move.rows]


def _plan(db: Path) -> list[Move]:
    """Every study of this tool with something recorded outside the database's folder, borrowed rows included."""
    home = db.resolve().parent / ARTIFACT_FOLDER
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        experiments = conn.execute(
            "SELECT e.experiment_id, t.value, e.artifact_location FROM experiments e "
            "JOIN experiment_tags t ON t.experiment_id = e.experiment_id AND t.key = ?",
            (TAG_STUDY,),
        ).fetchall()
        tables = [RUNS, *([LOGGED_MODELS] if _has_table(conn, LOGGED_MODELS.table) else [])]
        moves = []
        for experiment_id, study, location in experiments:
            rows = [row for table in tables for row in _rows_elsewhere(conn, table, int(experiment_id), home)]
            move = Move(
                int(experiment_id),
                study,
                experiment=_here(location, home),
                rows=tuple(row for row in rows if not row.borrowed),
                kept=tuple(row for row in rows if row.borrowed),
            )
            if move.experiment or move.rows or move.kept:
                moves.append(move)
        return moves
    finally:
        conn.close()


def _rows_elsewhere(conn: sqlite3.Connection, table: Located, experiment_id: int, home: Path) -> list[Row]:
    """The experiment's rows of `table` recorded under some other `mlruns/` (SQL skips those already here, so a
    store in place costs one query that finds nothing)."""
    inside = home.as_uri() + "/"
    found = conn.execute(
        f"SELECT {table.key}, {table.column} FROM {table.table} "
        f"WHERE experiment_id = ? AND substr({table.column}, 1, 7) = 'file://' AND substr({table.column}, 1, ?) != ?",
        (experiment_id, len(inside), inside),
    ).fetchall()
    rows = []
    for key, location in found:
        suffix = table.suffix.format(key)
        new_prefix = _here(location[: -len(suffix)], home) if location.endswith(suffix) else None
        if new_prefix is not None:
            rows.append(Row(table, key, location, new_prefix + suffix))
    return rows


def _here(location: str | None, home: Path) -> str | None:
    """Where a `<somewhere>/mlruns/<slug>` location goes beside the database; None for any other location and
    for one that is there already."""
    if not location or not location.startswith("file://"):
        return None
    old = _path(location.rstrip("/"))
    if old.parent.name != ARTIFACT_FOLDER or home / old.name == old:
        return None
    return (home / old.name).as_uri()


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _local_store(uri: str) -> Path | None:
    """The SQLite file of a local MLflow store; None for a server, a missing file, or another tool's database."""
    db = sqlite_path(uri)
    if db is None or not db.is_file():
        return None
    try:
        return db if sqlite_tables(db) >= MLFLOW_TABLES else None
    except ConfigError:  # not a database: the command's own checks say so in their words
        return None


def relocate_artifacts(uri: str) -> list[Move]:
    """Re-point the artifact locations of a moved or copied local store; the moves made (none for a server, a
    missing file, or a store already in place). Raises sqlite3.Error (e.g. a read-only folder) untouched."""
    db = _local_store(uri)
    moves = planned_moves(db) if db is not None else []
    if not moves:
        return []
    default = _default_elsewhere(db)  # only with a move: a store in place is left byte for byte as it is
    conn = sqlite3.connect(db, timeout=30)
    try:
        with conn:  # one transaction: every location moves, or none
            if default is not None:
                conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (default,))
            for move in moves:
                if move.experiment:
                    conn.execute(
                        "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                        (move.experiment, move.experiment_id),
                    )
                for row in move.rows:
                    _repoint(conn, row)
    finally:
        conn.close()
    # MLflow caches each run's artifact repository (its old location) per process: a process that wrote to the
    # store before it moved, a notebook say, would keep writing to the old folder.
    forget_cached_artifact_repos()
    return moves


def _default_elsewhere(db: Path) -> str | None:
    """Where MLflow's `Default` experiment (id 0, which MLflow makes with the schema, under the folder the first
    command ran in) belongs: `mlruns/0` beside the database; None when it is there, or not a local `mlruns/0`.
    Re-pointed with the studies of a moved or copied store: it holds none of this tool's runs, but the MLflow UI
    lists it first, and a run a user logs there must not land in the folder a store came from."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchone()
    finally:
        conn.close()
    location = found[0] if found else None
    if location and location.startswith("/"):  # MLflow records its default root as a plain path
        location = Path(location).as_uri()
    return _here(location, db.resolve().parent / ARTIFACT_FOLDER)


def _repoint(conn: sqlite3.Connection, row: Row) -> None:
    table = row.table
    conn.execute(f"UPDATE {table.table} SET {table.column} = ? WHERE {table.key} = ?", (row.new, row.key))


class CopiedRuns:
    """The borrowed runs of a store (a database copied without its mlruns/), found once: `own(run_id)` before
    anything is logged to a run makes it the copy's, so a copy never writes into the folder it came from."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        db = _local_store(uri)
        self._borrowed = (
            {row.key: row for move in _plan(db) for row in move.kept if row.table is RUNS} if db is not None else {}
        )

    def own(self, run_id: str) -> None:
        """Copy a borrowed run's files into the mlruns/ beside mlflow.db and re-point the run there; nothing for any
        other run. A failure is one line naming the fix, and leaves the run reading the original."""
        row = self._borrowed.get(run_id)
        if row is None:
            return
        old = _path(row.old)
        try:
            _copy_whole(old, _path(row.new))
            conn = sqlite3.connect(sqlite_path(self.uri), timeout=30)
            try:
                with conn:
                    _repoint(conn, row)
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot copy the files of run {run_id} from {shown(old)} into this store's {ARTIFACT_FOLDER}/ "
                f"before logging to it ({first_line(exc)}); copy {shown(row.origin)} beside mlflow.db"
            ) from None
        forget_cached_artifact_repos()
        del self._borrowed[run_id]


def _copy_whole(old: Path, new: Path) -> None:
    """`old`'s files at `new`, whole or not at all: copied under a name of this process's, then renamed, since a
    half-copied folder beside the database would be taken for the whole one. A process that got there first
    (workers ending together) wins, and this copy is dropped."""
    if new.exists() or not old.is_dir():
        return
    new.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{new.name}-", dir=new.parent))
    try:
        shutil.copytree(old, partial, dirs_exist_ok=True)
        partial.rename(new)
    except OSError:
        if not new.is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def relocate_or_warn(uri: str) -> str | None:
    """`relocate_artifacts` for commands: one line saying what moved, or why it could not (a read-only copy is
    still readable, so a failure is a warning, not an error)."""
    try:
        moves = relocate_artifacts(uri)
    except sqlite3.Error as exc:
        return f"warning: could not re-point the artifact locations in {shown(sqlite_path(uri))}: {first_line(exc)}"
    if not moves:
        return None
    home = shown(store_folder(uri).resolve() / ARTIFACT_FOLDER)  # one line whatever the folder is called
    studies = ", ".join(f"'{m.study}'" for m in moves)
    line = f"the store was moved or copied: artifact locations of {studies} now point to {home}"
    kept = [row for move in moves for row in move.kept]
    if not kept:
        return line
    origins = ", ".join(sorted({shown(row.origin) for row in kept}))
    return (
        f"{line}; {len(kept)} runs still read their files from {origins}, not copied with mlflow.db (a run's files are "
        "copied here before anything is logged to it; copy that folder beside mlflow.db to have them all here)"
    )
