"""A thin MLflow layer for sweeps: one experiment per study, a parent run for the study, a nested run per trial.

Written against `MlflowClient` with explicit run ids (no global active run), so several trials of a batch can be
open at once. Per-episode curves go out through `log_batch` in chunks, never one HTTP/SQL call per point.
Time spent here is accumulated per purpose in `seconds` ("setup", "trials", "best") so the sweep can report its
tracking overhead apart from one-time store creation.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dqn_core.errors import ConfigError
from sweeps.stores import redact, sqlite_path

TAG_STUDY = "dqn_sweep.study"
TAG_ROLE = "dqn_sweep.role"
TAG_TRIAL = "dqn_sweep.trial_number"
TAG_STATE = "dqn_sweep.state"
TAG_SAMPLER = "dqn_sweep.sampler"
TAG_PRUNER = "dqn_sweep.pruner"
TAG_SEARCHED = "dqn_sweep.searched_params"
TAG_STORAGE = "dqn_sweep.optuna_storage"
PARENT_TAG = "mlflow.parentRunId"

MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call

# A saved view of the MLflow UI's runs table (the UI's "Views -> Share" stores these as experiment tags):
# trials only, flat (sorting by anything but start time un-nests child runs), best first, searched params shown.
TRIALS_VIEW_KEY = "trials"
SHARED_VIEW_TAG = "mlflow.sharedViewState."

# Optuna trial state -> MLflow run status
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED", "KILLED": "KILLED"}


class StudyTracker:
    """MLflow side of one study (created on first use, found again on resume)."""

    def __init__(self, uri: str, study_name: str, tags: Mapping[str, str], searched: Sequence[str] = ()) -> None:
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # importing mlflow resets it to INFO
        self.seconds: dict[str, float] = {"setup": 0.0, "trials": 0.0, "best": 0.0}
        self.uri = uri
        with self._timed("setup"):
            try:
                self.client = MlflowClient(tracking_uri=uri)
                experiment = self.client.get_experiment_by_name(study_name)
                self.experiment_id = (
                    experiment.experiment_id
                    if experiment is not None
                    else self.client.create_experiment(
                        study_name, artifact_location=artifact_location(uri, study_name), tags={TAG_STUDY: study_name}
                    )
                )
                self.parent_run_id = self._find_or_create_parent(study_name, dict(tags))
                if searched:  # readers (replay, analysis) pass none and leave the view as the sweep set it
                    self.client.set_experiment_tag(
                        self.experiment_id, SHARED_VIEW_TAG + TRIALS_VIEW_KEY, trials_view_state(searched)
                    )
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"cannot use MLflow tracking store {redact(uri)}: {_first_line(exc)}") from None

    @contextmanager
    def _timed(self, purpose: str = "trials") -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[purpose] += time.perf_counter() - started

    def _find_or_create_parent(self, study_name: str, tags: dict[str, str]) -> str:
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_ROLE}` = 'study' and tags.`{TAG_STUDY}` = '{study_name}'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            for key, value in tags.items():
                self.client.set_tag(run_id, key, value)
            return run_id
        run = self.client.create_run(
            self.experiment_id, run_name=study_name, tags={**tags, TAG_ROLE: "study", TAG_STUDY: study_name}
        )
        return run.info.run_id

    def start_trial(
        self, number: int, params: Mapping[str, Any], searched: Sequence[str], seeds: Sequence[int], tags: Mapping
    ) -> str:
        """A RUNNING nested run holding every trainer parameter and the seeds."""
        from mlflow.entities import Param, RunTag

        with self._timed():
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"trial-{number:04d}",
                tags={
                    **tags,
                    PARENT_TAG: self.parent_run_id,
                    TAG_ROLE: "trial",
                    TAG_TRIAL: str(number),
                    TAG_STATE: "RUNNING",
                    TAG_SEARCHED: ",".join(searched),
                },
            )
            values = {**{k: _param_text(v) for k, v in params.items()}, "seeds": ",".join(map(str, seeds))}
            self.client.log_batch(
                run.info.run_id,
                params=[Param(k, v) for k, v in values.items()],
                tags=[RunTag(f"searched.{name}", _param_text(params[name])) for name in searched],
            )
            return run.info.run_id

    def log_curves(self, run_id: str, curves: Mapping[str, Sequence[float]], summary: Mapping[str, float]) -> None:
        """`curves` name -> per-episode values (logged with step = episode, 1-based); `summary` at step 0."""
        import math

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if v is not None and math.isfinite(v)]
        for name, values in curves.items():
            metrics.extend(
                Metric(name, float(v), now, episode)
                for episode, v in enumerate(values, start=1)
                if v is not None and math.isfinite(v)
            )
        with self._timed():
            for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])

    def log_files(self, run_id: str, files: Mapping[str, Any], purpose: str = "trials") -> None:
        """`files` maps a file name to a writer(path) -> None; written to a temp dir, then logged."""
        with tempfile.TemporaryDirectory() as folder, self._timed(purpose):
            for name, write in files.items():
                path = Path(folder) / name
                write(path)
                self.client.log_artifact(run_id, str(path))

    def finish_trial(self, run_id: str, state: str) -> None:
        with self._timed():
            self.client.set_tag(run_id, TAG_STATE, state)
            self.client.set_terminated(run_id, status=RUN_STATUS[state])

    def finish_study(self, status: str = "FINISHED") -> None:
        with self._timed("setup"):
            self.client.set_terminated(self.parent_run_id, status=status)

    def trial_runs(self) -> dict[int, Any]:
        """Trial number -> MLflow Run, for the runs this study has logged."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{TAG_ROLE}` = 'trial'", max_results=50_000
        )
        return {int(r.data.tags[TAG_TRIAL]): r for r in runs if TAG_TRIAL in r.data.tags}


def artifact_location(uri: str, study_name: str) -> str | None:
    """For a local SQLite store, artifacts go to `mlruns/<study>` beside the database file, not into whatever
    folder the process runs in (MLflow's default); servers choose their own artifact root."""
    db = sqlite_path(uri)
    if db is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip("-") or "study"
    return (db.resolve().parent / "mlruns" / slug).as_uri()


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


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
