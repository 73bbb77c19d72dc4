"""Shared test helpers: a tiny real sweep (journal storage + SQLite MLflow store) and a PostgreSQL store reader."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from sweeps.cli import main

TINY_SWEEP = """
study:
  n_trials: 6
  max_seeds: 5
  slots: 8
  seeds_in_flight: 2
  sampler: tpe
  pruner: wilcoxon
  startup_seeds: 4
  seed: 7
  validate_seeds: 0
trainer:
  max_episodes: 100
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
  epsilon_decay_rate: {type: float, low: 0.001, high: 0.01, log: true}
  batch_size: {type: categorical, choices: [16, 32]}
  warmup: {type: int, low: 0, high: 10}
  learning_rate: {type: categorical, choices: [0.00001, 0.001, 0.003]}
"""


class Stores:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "tiny.yaml"
        self.config.write_text(TINY_SWEEP)
        self.journal = root / "optuna-journal.log"
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"

    def argv(self, *extra: str, study: str = "tiny") -> list[str]:
        return [
            "run",
            "--config",
            str(self.config),
            "--study-name",
            study,
            "--storage",
            f"journal:{self.journal}",
            "--tracking-uri",
            self.tracking_uri,
            "--no-progress",
            *extra,
        ]

    def run(self, *extra: str, study: str = "tiny") -> int:
        return main(self.argv(*extra, study=study))


# A sweep for several worker processes: two seeds, two slots, short trials (values are censored at 31, which is
# fine: these tests are about bookkeeping, not learning).
WORKER_SWEEP = """
study: {n_trials: 8, max_seeds: 2, slots: 2, sampler: tpe, pruner: none, seed: 11, validate_seeds: 0}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
  warmup: {type: int, low: 0, high: 10}
"""
FAST_LIVENESS = ("--heartbeat-interval", "1", "--grace-period", "6")


def sqlite_rows_read_only(db: Path, query: str) -> list[tuple]:
    """The rows `query` finds in an SQLite file, opened read-only: a test that polls a store another process is
    creating must not write to it (an MLflow client would race the schema's creation). No rows while the file or
    its tables do not exist yet, or the writer holds the lock."""
    import sqlite3

    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def pg_table_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table in a PostgreSQL database's public schema, as text, sorted: a store's full content
    (to compare before/after, or to search for a secret)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                sqlalchemy.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).scalars()
            return {
                table: list(conn.execute(sqlalchemy.text(f'SELECT t::text FROM "{table}" t ORDER BY 1')).scalars())
                for table in list(tables)
            }
    finally:
        engine.dispose()
