"""Every MLflow internal dqn-sweep relies on: the Python one wrapped here, the others listed, all tested on the MLflow
range pinned in pyproject.toml.

MLflow's public API lacks one thing we need: a way to forget the artifact repositories its client caches per run
(`mlflow.tracking._tracking_service.utils._artifact_repos_cache`, an OrderedDict by run id that
`TrackingServiceClient._get_artifact_repo` fills and never invalidates). After `relocation.py` re-points a moved
store's artifact locations, a process that had already used a run (a notebook, say) would keep reading and writing
the run's old folder. Nothing else in dqn-sweep may touch an underscore name of MLflow.

Internals that are not Python API, spelled where they are used:
- MLflow's SQL schema: `relocation.py` rewrites `experiments.artifact_location`, `runs.artifact_uri` and
  `logged_models.artifact_location` (no API changes a recorded location) and reads `experiment_tags`;
- the SQL store's logger name `mlflow.store.db.utils` and the UI's saved-view tag prefix `mlflow.sharedViewState.`
  (`tracking/tracker.py`).

pyproject.toml pins MLflow >= 3.9, < 4. This was checked on MLflow 3.17 (the cache has been a module-level
OrderedDict there since MLflow 2); `tests/sweeps/test_mlflow_adapter.py` fails on a release that moves the cache or
the schema columns, so a new MLflow release is checked there first.
"""

from __future__ import annotations

import sys

__all__ = ["ARTIFACT_REPOS_MODULE", "forget_cached_artifact_repos"]

ARTIFACT_REPOS_MODULE = "mlflow.tracking._tracking_service.utils"  # holds `_artifact_repos_cache`


def forget_cached_artifact_repos() -> None:
    """Drop every artifact repository MLflow's client cached in this process, so the next artifact call of a run
    reads its location from the store again. Without mlflow imported there is no cache, and nothing is imported."""
    utils = sys.modules.get(ARTIFACT_REPOS_MODULE)
    cache = getattr(utils, "_artifact_repos_cache", None)
    if cache is not None:
        cache.clear()
