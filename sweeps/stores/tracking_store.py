"""The MLflow tracking store seen as a store: how this tool's MLflow client is set up (bounded HTTP retries, quiet
logs) and the read-only probe every command runs before its first write."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from dqn_core.errors import ConfigError
from sweeps.stores.locations import connect_url, first_line, redact

STUDY_TAG = "dqn_sweep.study"  # on a study's experiment and on every run in it: the study's name
ROLE_TAG = "dqn_sweep.role"

# MLflow's HTTP defaults (7 retries, exponential backoff, 120 s timeout) stall a sweep for minutes per call when
# the server is down, and a hung server (one that accepts connections and never answers) took ~93 s per call with
# our earlier 30 s x 3 attempts. These bound one call to 2 attempts of 10 s plus 1 s of backoff, ~21 s; after a
# failed call the tracker skips tracking for a while (`tracker.OUTAGE_BACKOFF_S`) instead of paying that per call.
# Closing a run on a server also prints its URL to stdout, once per trial. Set the variables yourself to override.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# The preflight's probe answers a user waiting at the prompt: one attempt, and a short wait for a hung server.
PROBE_TIMEOUT_S = 5
_PROBE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(PROBE_TIMEOUT_S)}
_USER_SET = frozenset(name for name in HTTP_DEFAULTS if name in os.environ)  # the user's values are never changed


def bounded_http_retries() -> None:
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # one warning line per outage, not one per retry


@contextmanager
def _probing() -> Iterator[None]:
    """The probe's bounds for its duration (the sweep's own calls keep `HTTP_DEFAULTS`)."""
    changed = {name: os.environ.get(name) for name in _PROBE if name not in _USER_SET}
    os.environ.update({name: _PROBE[name] for name in changed})
    try:
        yield
    finally:
        for name, value in changed.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unreachable_reason(exc: BaseException) -> str:
    """What a user can act on, instead of urllib3's retry chain (a few hundred characters on one line)."""
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused (is the server running, on this host and port?)"
    if "timed out" in text or "Timeout" in text:
        return f"no answer within {PROBE_TIMEOUT_S} s (is the server hung or behind a firewall?)"
    if "Name or service not known" in text or "Failed to resolve" in text or "nodename nor servname" in text:
        return "host name not found"
    return first_line(exc)


def quiet_mlflow_logs() -> None:
    """MLflow's INFO lines off (importing mlflow resets its level), and its SQL store's ERROR log with a full
    traceback too: every failure of a tracking call already reaches the user as one line (`attempt`)."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a download bar per best-trial CSV
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def probe_tracking(uri: str, *, study_name: str | None = None) -> None:
    """Reads only, before anything is written anywhere: an unreachable or unusable store, or the study's experiment
    in MLflow's trash (creating runs in it fails half-way), is a one-line error."""
    from mlflow.tracking import MlflowClient

    bounded_http_retries()
    quiet_mlflow_logs()
    try:
        client = MlflowClient(tracking_uri=connect_url(uri))
        with _probing():
            client.search_experiments(max_results=1)
        experiment = client.get_experiment_by_name(study_name) if study_name else None
    except Exception as exc:
        raise ConfigError(redact(f"cannot use MLflow tracking store {uri}: {unreachable_reason(exc)}")) from None
    if experiment is None:
        return
    if experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"MLflow experiment '{study_name}' (id {experiment.experiment_id}) is deleted; restore it with "
            f"`mlflow experiments restore --experiment-id {experiment.experiment_id}` or use another --study-name"
        )
    if not _made_by_a_sweep(client, experiment, study_name):
        raise ConfigError(
            f"MLflow experiment '{study_name}' (id {experiment.experiment_id}) was not made by dqn-sweep (no "
            f"{STUDY_TAG} tag): its runs and artifacts are another program's; use another --study-name or "
            "--tracking-uri"
        )


def _made_by_a_sweep(client, experiment, study_name: str) -> bool:
    """An experiment of this tool carries the study tag (since the first version); one made by hand for a study
    still holds the study's parent run. Anything else belongs to another program and is never adopted: its
    artifacts would go to that program's folder and its runs would mix with the sweep's."""
    if experiment.tags.get(STUDY_TAG) == study_name:
        return True
    try:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{ROLE_TAG}` = 'study' and tags.`{STUDY_TAG}` = '{study_name}'",
            max_results=1,
        )
    except Exception as exc:
        raise ConfigError(redact(f"cannot read MLflow experiment '{study_name}': {first_line(exc)}")) from None
    return bool(runs)
