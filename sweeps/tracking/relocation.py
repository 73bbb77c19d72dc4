"""A local sweep folder (mlflow.db, mlruns/, optuna-journal.log) can be copied or moved as a whole.

MLflow records artifact locations as absolute `file://` URIs (mlflow/mlflow#3144), in the experiment and in every
run: after a move, its client lists no artifacts, and on a copy every write lands in the *original* folder. The
Optuna journal holds no paths. So before a command opens a local store, the artifact locations of this tool's
experiments are re-pointed, by prefix, to the `mlruns/` folder beside the database they are in now, in one SQLite
transaction (a failure changes nothing). After that MLflow's own client and UI find every artifact too.

This edits MLflow's SQL schema directly, and clears its client's per-process cache of artifact locations through
`mlflow_adapter.py`, which lists both as MLflow internals and whose tests check them on the pinned MLflow.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from dqn_core.errors import ConfigError, shown
from sweeps.stores.locations import ARTIFACT_FOLDER, MLFLOW_TABLES, first_line, sqlite_path, sqlite_tables, store_folder
from sweeps.stores.mlflow_adapter import forget_cached_artifact_repos
from sweeps.tracking.tags import TAG_STUDY


@dataclass(frozen=True)
class Move:
    experiment_id: int
    study: str
    old: str  # artifact location URIs, no trailing slash
    new: str


def planned_moves(db: Path) -> list[Move]:
    """Experiments of this tool whose artifacts are recorded outside the folder the database is in now.

    A location is re-pointed only when it is `<somewhere>/mlruns/<slug>` (as `tracking.artifact_location` makes
    it) and the copy beside the database exists or the old folder is gone: a database copied without its
    artifacts keeps reading the original's."""
    home = db.resolve().parent / ARTIFACT_FOLDER
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT e.experiment_id, t.value, e.artifact_location FROM experiments e "
            "JOIN experiment_tags t ON t.experiment_id = e.experiment_id AND t.key = ?",
            (TAG_STUDY,),
        ).fetchall()
    finally:
        conn.close()
    moves = []
    for experiment_id, study, location in rows:
        if not location or not location.startswith("file://"):
            continue
        old_path = Path(unquote(urlparse(location).path))
        if old_path.parent.name != ARTIFACT_FOLDER:
            continue
        new_path = home / old_path.name
        if new_path == old_path or not (new_path.is_dir() or not old_path.exists()):
            continue
        moves.append(Move(int(experiment_id), study, location.rstrip("/"), new_path.as_uri()))
    return moves


def relocate_artifacts(uri: str) -> list[Move]:
    """Re-point the artifact locations of a moved or copied local store; the moves made (none for a server, a
    missing file, or a store already in place). Raises sqlite3.Error (e.g. a read-only folder) untouched."""
    db = sqlite_path(uri)
    if db is None or not db.is_file():
        return []
    try:
        if not sqlite_tables(db) >= MLFLOW_TABLES:
            return []
    except ConfigError:  # not a database: the command's own checks say so in their words
        return []
    moves = planned_moves(db)
    if not moves:
        return []
    conn = sqlite3.connect(db, timeout=30)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        with conn:  # one transaction: every location moves, or none
            for move in moves:
                conn.execute(
                    "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                    (move.new, move.experiment_id),
                )
                _replace_prefix(conn, "runs", "artifact_uri", move)
                if "logged_models" in tables:
                    _replace_prefix(conn, "logged_models", "artifact_location", move)
    finally:
        conn.close()
    # MLflow caches each run's artifact repository (its old location) per process: a process that wrote to the
    # store before it moved, a notebook say, would keep writing to the old folder.
    forget_cached_artifact_repos()
    return moves


def _replace_prefix(conn: sqlite3.Connection, table: str, column: str, move: Move) -> None:
    old = move.old + "/"
    conn.execute(
        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
        f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
        (move.new + "/", len(old) + 1, move.experiment_id, len(old), old),
    )


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
    return f"the store was moved or copied: artifact locations of {studies} now point to {home}"
