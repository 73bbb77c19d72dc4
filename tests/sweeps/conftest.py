"""Servers for the scale-out tests: a throwaway PostgreSQL cluster and an `mlflow server`, both on 127.0.0.1."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password authentication (the password must never leak)."""
    from tests.servers import PostgresCluster, find_pg_bin

    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found; .ci/run installs them")
    cluster = PostgresCluster(password="pw-Must-Not-Leak-42").start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a PostgreSQL backend store and a local artifact root, shared by tests."""
    from tests.servers import MlflowServer

    root = tmp_path_factory.mktemp("mlflow_server")
    server = MlflowServer(postgres.create_database("mlflow"), root / "artifacts", workers=2).start()
    yield server
    server.stop()
