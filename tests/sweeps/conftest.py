"""A tiny real sweep (journal storage + SQLite MLflow store in tmp_path) shared by the sweep tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps.cli import main

TINY_SWEEP = """
study:
  n_trials: 6
  n_seeds: 2
  trials_per_batch: 3
  sampler: tpe
  pruner: reachable
  seed: 7
trainer:
  max_episodes: 60
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


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Stores:
    stores = Stores(tmp_path_factory.mktemp("tiny_sweep"))
    assert stores.run() == 0
    return stores


# A sweep for several worker processes: one seed, one trial per batch, short trials (values are censored at 31,
# which is fine: these tests are about bookkeeping, not learning).
WORKER_SWEEP = """
study: {n_trials: 8, n_seeds: 1, trials_per_batch: 1, sampler: tpe, pruner: none, seed: 11}
trainer: {max_episodes: 30}
search_space:
  gamma: {type: float, low: 0.9, high: 0.999}
  warmup: {type: int, low: 0, high: 10}
"""
FAST_LIVENESS = ("--heartbeat-interval", "1", "--grace-period", "6")


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password authentication (the password must never leak)."""
    from sweeps.servers import PostgresCluster, find_pg_bin

    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found; .ci/run installs them")
    cluster = PostgresCluster(password="pw-Must-Not-Leak-42").start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a PostgreSQL backend store and a local artifact root, shared by tests."""
    from sweeps.servers import MlflowServer

    root = tmp_path_factory.mktemp("mlflow_server")
    server = MlflowServer(postgres.create_database("mlflow"), root / "artifacts", workers=2).start()
    yield server
    server.stop()
