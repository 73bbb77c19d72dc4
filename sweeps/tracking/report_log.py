"""Log a written report to its study's MLflow parent run: the one store write of `dqn-sweep report`.

It lives here, not in `analysis`, so analysis stays read-only: the command builds the file with
`analysis.report.build_report`, then calls `log_report`.
"""

from __future__ import annotations

from pathlib import Path

from dqn_core.errors import ConfigError
from sweeps.stores.locations import connect_url, first_line, redact
from sweeps.stores.tracking_store import bounded_http_retries, quiet_mlflow_logs
from sweeps.tracking.relocation import CopiedRuns
from sweeps.tracking.tags import TAG_ROLE, TAG_STUDY


def log_report(tracking_uri: str, study_name: str, path: Path) -> str | None:
    """Log `path` as an artifact of the study's parent run; its run id, or None when the store has no parent run
    for the study (nothing is created: a report never makes a run). A store that fails is a one-line ConfigError."""
    from mlflow.tracking import MlflowClient

    bounded_http_retries()
    quiet_mlflow_logs()
    try:
        client = MlflowClient(tracking_uri=connect_url(tracking_uri))
        experiment = client.get_experiment_by_name(study_name)
        if experiment is None:
            return None
        found = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{TAG_ROLE}` = 'study' and tags.`{TAG_STUDY}` = '{study_name}'",
            max_results=1,
        )
        if not found:
            return None
        run_id = found[0].info.run_id
        CopiedRuns(tracking_uri).own(run_id)  # a copied store logs beside its own mlflow.db, never the original's
        client.log_artifact(run_id, str(path))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(redact(f"cannot log {path} to MLflow store {tracking_uri}: {first_line(exc)}")) from None
    return run_id
