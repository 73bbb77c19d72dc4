"""A thin MLflow layer for sweeps: one experiment per study, a parent run for the study, a nested run per trial.

Written against `MlflowClient` with explicit run ids (no global active run), so several trials of a batch can be
open at once. Per-episode curves go out through `log_batch` in chunks, never one HTTP/SQL call per point.
Time spent here is accumulated per purpose in `seconds` ("setup", "trials", "best") so the sweep can report its
tracking overhead apart from one-time store creation.

The sweep calls the per-trial methods through `attempt`: when the tracking server is unreachable, Optuna still
gets every trial, the failure becomes one warning line, calls are skipped for `OUTAGE_BACKOFF_S`, and
`dqn-sweep sync` later re-creates what is missing (see `recovery.py`).
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

from dqn_core.errors import ConfigError
from sweeps.stores.locations import ARTIFACT_FOLDER, connect_url, first_line, redact, sqlite_path
from sweeps.stores.tracking_store import bounded_http_retries, quiet_mlflow_logs
from sweeps.tracking.relocation import CopiedRuns
from sweeps.tracking.tags import (
    TAG_ROLE,
    TAG_STATE,
    TAG_STUDY,
)
from sweeps.tracking.trial_runs import TrialRuns

T = TypeVar("T")


# A saved view of the MLflow UI's runs table (the UI's "Views -> Share" stores these as experiment tags):
# trials only, flat (sorting by anything but start time un-nests child runs), best first, searched params shown.
TRIALS_VIEW_KEY = "trials"
SHARED_VIEW_TAG = "mlflow.sharedViewState."

OUTAGE_BACKOFF_S = 30.0  # after a failed call, skip tracking for this long instead of paying retries per call


def seed_metric(seed: object, what: str) -> str:
    """A per-seed metric's name. One `per_seed/` prefix for all of them: the MLflow UI gives each prefix its own
    section of charts, and `seed_<s>/...` opened a trial's page on one one-bar section per seed."""
    return f"per_seed/seed_{seed}_{what}"


def summary_metrics(
    *,
    value: float | None,
    per_seed: Mapping[str, float],
    extra: Mapping[str, float],
    bounds: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The step-0 metrics of a trial run: the objective and every finished seed's value (complete and pruned
    trials alike); `bounds` are the lower bounds that studies made before seeds were raced kept instead."""
    summary = {k: float(v) for k, v in extra.items() if v is not None}
    if value is not None:
        summary["episodes_to_solve"] = float(value)
    summary.update({seed_metric(s, "episodes_to_solve"): float(v) for s, v in per_seed.items()})
    summary.update({seed_metric(s, "lower_bound"): float(v) for s, v in (bounds or {}).items() if s not in per_seed})
    return summary


class StudyTracker:
    """MLflow side of one study (created on first use, found again on resume)."""

    def __init__(
        self,
        uri: str,
        study_name: str,
        tags: Mapping[str, str],
        searched: Sequence[str] = (),
        *,
        sweeping: bool = False,
        sync_hint: str | None = None,
    ) -> None:
        """`sweeping`: this process runs trials, so the study's parent run is (re)opened as RUNNING and tagged;
        every other user (replay, repair, sync) leaves the parent run in the status it had. `sync_hint`: the
        `dqn-sweep sync` command the outage warning prints (a sweep's names its Optuna storage too)."""
        from mlflow.tracking import MlflowClient

        quiet_mlflow_logs()
        bounded_http_retries()
        self.seconds: dict[str, float] = {"setup": 0.0, "trials": 0.0, "best": 0.0, "verdict": 0.0}
        self.uri = uri
        self.study_name = study_name
        self.sync_hint = sync_hint or f"dqn-sweep sync --study-name {study_name} --tracking-uri {uri}"
        self.failed_calls = 0
        self._down_until = 0.0
        with self._timed("setup"):
            try:
                self.client = MlflowClient(tracking_uri=connect_url(uri))
                experiment = self.client.get_experiment_by_name(study_name)
                self.experiment_id = (
                    experiment.experiment_id
                    if experiment is not None
                    else self.client.create_experiment(
                        study_name, artifact_location=artifact_location(uri, study_name), tags={TAG_STUDY: study_name}
                    )
                )
                self.parent_run_id = self._find_or_create_parent(study_name, dict(tags), reopen=sweeping)
                self.trials = TrialRuns(
                    self.client, self.experiment_id, self.parent_run_id, self._timed, CopiedRuns(uri).own
                )
                if searched:  # readers (replay, analysis) pass none and leave the view as the sweep set it
                    self.client.set_experiment_tag(
                        self.experiment_id, SHARED_VIEW_TAG + TRIALS_VIEW_KEY, trials_view_state(searched)
                    )
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(redact(f"cannot use MLflow tracking store {uri}: {first_line(exc)}")) from None

    def attempt(self, what: str, call: Callable[[], T], *, force: bool = False) -> T | None:
        """`call()`, or None when tracking is down: the sweep goes on and `dqn-sweep sync` repairs the gap later.

        `force` tries even during the back-off: closing calls at the end of a sweep must not be skipped because an
        unrelated call failed a few seconds earlier (that left the study's parent run RUNNING).
        """
        if not force and time.monotonic() < self._down_until:
            self.failed_calls += 1
            return None
        try:
            return call()
        except Exception as exc:
            self.failed_calls += 1
            self._down_until = time.monotonic() + OUTAGE_BACKOFF_S
            print(
                redact(f"warning: MLflow tracking at {self.uri} failed ({what}: {first_line(exc)[:200]}); ")
                + redact(f"trials go on in Optuna; run `{self.sync_hint}` once it is back"),
                file=sys.stderr,
                flush=True,
            )
            return None

    @contextmanager
    def _timed(self, purpose: str = "trials") -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[purpose] += time.perf_counter() - started

    def _find_or_create_parent(self, study_name: str, tags: dict[str, str], *, reopen: bool) -> str:
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_ROLE}` = 'study' and tags.`{TAG_STUDY}` = '{study_name}'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            if reopen:
                self.client.update_run(run_id, status="RUNNING")
                for key, value in tags.items():
                    self.client.set_tag(run_id, key, value)
            return run_id
        run = self.client.create_run(
            self.experiment_id, run_name=study_name, tags={**tags, TAG_ROLE: "study", TAG_STUDY: study_name}
        )
        if not reopen:  # a parent made for a replay or a sync has nothing running under it
            self.client.set_terminated(run.info.run_id, status="FINISHED")
        return run.info.run_id

    def log_study_result(self, tags: Mapping[str, str], metrics: Mapping[str, float]) -> None:
        """Tags and step-0 metrics on the study's parent run (the verdict)."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        with self._timed("verdict"):
            self.client.log_batch(
                self.parent_run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if math.isfinite(v)],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )

    def finish_study(self, status: str = "FINISHED") -> None:
        with self._timed("setup"):
            self.client.set_terminated(self.parent_run_id, status=status)


def artifact_location(uri: str, study_name: str) -> str | None:
    """For a local SQLite store, artifacts go to `mlruns/<study>` beside the database file, not into whatever
    folder the process runs in (MLflow's default); servers choose their own artifact root."""
    db = sqlite_path(uri)
    if db is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip("-") or "study"
    return (db.resolve().parent / ARTIFACT_FOLDER / slug).as_uri()


def trials_view_state(searched: Sequence[str]) -> str:
    """JSON the MLflow UI reads for `#/experiments/<id>/runs?viewStateShareKey=trials`."""
    import json

    columns = [f"params.`{name}`" for name in searched] + [
        "metrics.`episodes_to_solve`",
        f"tags.`{TAG_STATE}`",
        "params.`seeds`",
    ]
    return json.dumps(
        {
            "selectedColumns": columns,
            "searchFilter": f"tags.`{TAG_ROLE}` = 'trial'",
            "orderByKey": "metrics.`episodes_to_solve`",
            "orderByAsc": True,
        }
    )


def trials_view_path(experiment_id: str) -> str:
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={TRIALS_VIEW_KEY}"
