"""MLflow internals are used in one module only, on the MLflow range pyproject.toml pins (and the tests run on)."""

from __future__ import annotations

import importlib
import re
import sqlite3
from importlib.metadata import version
from pathlib import Path

import sweeps
from sweeps.stores import mlflow_adapter

SOURCES = Path(sweeps.__file__).parent
ANALYSIS = SOURCES.parent / "analysis"


def test_installed_mlflow_is_in_the_pinned_range():
    pyproject = (SOURCES.parent / "pyproject.toml").read_text()
    low, high = re.search(r'"mlflow>=([\d.]+),<([\d.]+)"', pyproject).groups()
    as_tuple = lambda text: tuple(int(part) for part in text.split(".")[:2])  # noqa: E731
    assert as_tuple(low) <= as_tuple(version("mlflow")) < as_tuple(high)


def test_only_the_adapter_touches_mlflow_internals():
    private = re.compile(r"mlflow(\.\w+)*\._\w+|_artifact_repos_cache")
    offenders = [
        f"{path.relative_to(SOURCES.parent)}:{number}: {line.strip()}"
        for path in sorted([*SOURCES.rglob("*.py"), *ANALYSIS.rglob("*.py")])
        if path.name != "mlflow_adapter.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if private.search(line)
    ]
    assert offenders == []


def test_the_adapter_still_fits_this_mlflow(tmp_path):
    """The client caches a run's artifact location where the adapter looks and keeps writing there after the store
    re-pointed the run (as `relocation.py` does, in the schema columns checked here), until the adapter forgets it."""
    from mlflow.tracking import MlflowClient

    cache = importlib.import_module(mlflow_adapter.ARTIFACT_REPOS_MODULE)._artifact_repos_cache
    db = tmp_path / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    run_id = client.create_run(client.create_experiment("e", artifact_location=(tmp_path / "old").as_uri())).info.run_id
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(name)
    client.log_artifact(run_id, str(tmp_path / "a.txt"))
    assert run_id in cache

    conn = sqlite3.connect(db)
    try:
        with conn:
            new = (tmp_path / "new" / run_id / "artifacts").as_uri()
            conn.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", (new, run_id))
        columns = {
            table: {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            for table in ("experiments", "runs", "logged_models", "experiment_tags")
        }
    finally:
        conn.close()
    assert "artifact_location" in columns["experiments"] and "artifact_uri" in columns["runs"]
    assert {"artifact_location", "experiment_id"} <= columns["logged_models"]
    assert {"experiment_id", "key", "value"} <= columns["experiment_tags"]

    client.log_artifact(run_id, str(tmp_path / "b.txt"))  # the cached, old location
    mlflow_adapter.forget_cached_artifact_repos()
    assert len(cache) == 0
    client.log_artifact(run_id, str(tmp_path / "c.txt"))
    written = lambda folder: sorted(p.name for p in (tmp_path / folder / run_id / "artifacts").iterdir())  # noqa: E731
    assert written("old") == ["a.txt", "b.txt"] and written("new") == ["c.txt"]
