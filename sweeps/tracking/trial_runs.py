"""The nested MLflow run of each trial under its study's parent run: created RUNNING with every trainer parameter,
logged in batches (never one call per point), closed with the trial's state. Time spent goes to the study tracker's
`seconds`, by purpose."""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sweeps.tracking.tags import PARENT_TAG, TAG_ROLE, TAG_SEARCHED, TAG_STATE, TAG_TRIAL

MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call

# Optuna trial state -> MLflow run status
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED", "KILLED": "KILLED"}


class TrialRuns:
    """Writes and reads of a study's trial runs, by run id (several trials are open at once: no active run)."""

    def __init__(
        self,
        client: Any,
        experiment_id: str,
        parent_run_id: str,
        timed: Callable[[str], AbstractContextManager[None]],
        before_logging: Callable[[str], None] = lambda run_id: None,
    ) -> None:
        """`before_logging(run_id)` runs before files are logged to a run: a copied store makes the run its own
        there (`relocation.CopiedRuns.own`), so that they never land in the folder it was copied from."""
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self._timed = timed
        self._before_logging = before_logging

    def start(
        self, number: int, params: Mapping[str, Any], searched: Sequence[str], seeds: Sequence[int], tags: Mapping
    ) -> str:
        """A RUNNING nested run holding every trainer parameter and the seeds."""
        with self._timed("trials"):
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
            self.log_params(run.info.run_id, params, searched, seeds)
            return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any], searched: Sequence[str], seeds: Sequence[int]) -> None:
        """Every trainer parameter and the seeds as params; the searched ones also as `searched.<name>` tags."""
        from mlflow.entities import Param, RunTag

        values = {**{k: _param_text(v) for k, v in params.items()}, "seeds": ",".join(map(str, seeds))}
        with self._timed("trials"):
            self.client.log_batch(
                run_id,
                params=[Param(k, v) for k, v in values.items()],
                tags=[RunTag(f"searched.{name}", _param_text(params[name])) for name in searched],
            )

    def log_curves(
        self,
        run_id: str,
        curves: Mapping[str, Sequence[float]],
        summary: Mapping[str, float],
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """`curves` name -> per-episode values (logged with step = episode, 1-based); `summary` at step 0; `tags`
        with the first batch (one call fewer per trial)."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if v is not None and math.isfinite(v)]
        for name, values in curves.items():
            metrics.extend(
                Metric(name, float(v), now, episode)
                for episode, v in enumerate(values, start=1)
                if v is not None and math.isfinite(v)
            )
        run_tags = [RunTag(k, v) for k, v in (tags or {}).items()]
        with self._timed("trials"):
            for start in range(0, max(len(metrics), 1), MAX_METRICS_PER_BATCH):
                batch = metrics[start : start + MAX_METRICS_PER_BATCH]
                self.client.log_batch(run_id, metrics=batch, tags=run_tags if start == 0 else [])

    def log_metrics(self, run_id: str, metrics: Sequence[Any]) -> None:
        """`mlflow.entities.Metric`s as they are (their own steps and timestamps), in as few calls as MLflow allows."""
        with self._timed("trials"):
            for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=list(metrics[start : start + MAX_METRICS_PER_BATCH]))

    def log_files(self, run_id: str, files: Mapping[str, Any], purpose: str = "trials") -> None:
        """`files` maps a file name to a writer(path) -> None; written to a temp dir, then logged."""
        with tempfile.TemporaryDirectory() as folder, self._timed(purpose):
            for name, write in files.items():
                write(Path(folder) / name)
            self._before_logging(run_id)
            self.client.log_artifacts(run_id, folder)  # one call for all: a trial logs two files

    def tag_value(self, run_id: str, key: str) -> str | None:
        return self.client.get_run(run_id).data.tags.get(key)

    def tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def download(self, run_id: str, name: str, folder: Path) -> Path | None:
        """The run's top-level artifact `name`, downloaded into `folder`; None when the run has no such file."""
        if name not in {a.path for a in self.client.list_artifacts(run_id)}:
            return None
        return Path(self.client.download_artifacts(run_id, name, str(folder)))

    def finish(self, run_id: str, state: str, *, tagged: bool = False) -> None:
        """End the run with the trial's state (`tagged`: the state tag went with the last `log_curves`)."""
        with self._timed("trials"):
            if not tagged:
                self.client.set_tag(run_id, TAG_STATE, state)
            self.client.set_terminated(run_id, status=RUN_STATUS[state])

    def abandon(self, run_id: str) -> None:
        """Close a trial's run as FAILED after a tracking error in the middle of logging it, so that no run stays
        RUNNING; best effort (the store may be what failed), the caller has already warned once."""
        with contextlib.suppress(Exception):
            self.client.set_tag(run_id, TAG_STATE, "TRACKING_ERROR")
        with contextlib.suppress(Exception):
            self.client.set_terminated(run_id, status="FAILED")

    def by_number(self) -> dict[int, Any]:
        """Trial number -> MLflow Run, for the runs this study has logged (paged: no limit on the count)."""
        runs: dict[int, Any] = {}
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`{TAG_ROLE}` = 'trial'",
                max_results=1000,
                page_token=token,
            )
            runs.update({int(r.data.tags[TAG_TRIAL]): r for r in page if TAG_TRIAL in r.data.tags})
            token = page.token
            if not token:
                return runs


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)
