"""Load a study from its real stores into tidy pandas DataFrames (read-only: no store or study is ever created).

Optuna holds the trials (params, states, values, per-seed results); MLflow holds the runs and the per-episode
curves. `trials_frame` has one row per trial x seed; `episodes_frame` one row per trial x seed x episode.

Trials race seeds 0, 1, 2, ...: a complete trial finished every seed, a pruned one only the first few. Both record
the seeds they finished under `TRIAL_PER_SEED`, so both get one row per finished seed and a trial's seed count is
its number of rows with a value (`analysis.compare.per_trial` counts them). Seeds a pruned trial still had in
flight are cut short and never reach Optuna; only `episodes_frame` (the trial's curves) shows them.

`open_studies` is the notebooks' door: it finds `make sweep`'s stores from any folder and fails in one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from dqn_core.errors import ConfigError
from sweeps.stores.locations import DEFAULT_TRACKING_URI, connect_url, sqlite_path, tracking_uri
from sweeps.stores.preflight import probe_tracking_store
from sweeps.study.existing import load_existing_study
from sweeps.study.schema import (
    ATTR_BASE_CONFIG,
    CURVES_FILE,
    TRIAL_CENSORED,
    TRIAL_ENV_STEPS,
    TRIAL_LOWER_BOUNDS,
    TRIAL_RUN_ID,
    TRIAL_WALL_TIME,
    base_config,
    is_baseline,
    per_seed_values,
    recorded,
)
from sweeps.tracking.artifacts import CURVE_COLUMNS, read_curves_csv
from sweeps.tracking.tags import TAG_ROLE, TAG_STUDY, TAG_TRIAL

CURVES = CURVE_COLUMNS[2:]  # steps, epsilon, loss: what each episode of each seed records


@dataclass
class StudyData:
    """One study's two stores, opened once; DataFrames are built on first use."""

    study: optuna.Study
    tracking_uri: str

    @classmethod
    def open(cls, name: str | None, *, storage: str | None = None, tracking: str | None = None) -> StudyData:
        uri = tracking_uri(tracking)
        # Read-only probe: a missing or empty MLflow store is refused, never created (MLflow would write a schema).
        probe_tracking_store(uri, study_name=name, must_exist=True)
        study = load_existing_study(name, storage, tracking)
        if not study.get_trials(deepcopy=False):
            raise ConfigError(f"study '{study.study_name}' has no trials yet")
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if not finished:
            raise ConfigError(f"study '{study.study_name}' has no complete or pruned trial (all failed or running)")
        return cls(study=study, tracking_uri=uri)

    @property
    def name(self) -> str:
        return self.study.study_name

    @cached_property
    def client(self):
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        return MlflowClient(tracking_uri=connect_url(self.tracking_uri))

    @cached_property
    def experiment_id(self) -> str | None:
        experiment = self.client.get_experiment_by_name(self.name)
        return experiment.experiment_id if experiment else None

    @cached_property
    def runs(self) -> pd.DataFrame:
        """All MLflow runs of the study (trials, the parent, validations) as `mlflow.search_runs` returns them."""
        import mlflow

        if self.experiment_id is None:
            return pd.DataFrame()
        mlflow.set_tracking_uri(connect_url(self.tracking_uri))
        return mlflow.search_runs(experiment_ids=[self.experiment_id], max_results=50_000)

    @cached_property
    def trials(self) -> pd.DataFrame:
        return trials_frame(self.study, self.runs)

    @cached_property
    def episodes(self) -> pd.DataFrame:
        return episodes_frame(self)

    @cached_property
    def max_episodes(self) -> int | None:
        """The trainer's episode cap: a seed that did not solve within it counts as max_episodes + 1. None when the
        study records no trainer config."""
        if recorded(self.study, ATTR_BASE_CONFIG) is None:
            return None
        return base_config(self.study).max_episodes

    def parent_run_id(self) -> str | None:
        runs = self.runs
        if runs.empty or f"tags.{TAG_ROLE}" not in runs:
            return None
        parents = runs[(runs[f"tags.{TAG_ROLE}"] == "study") & (runs[f"tags.{TAG_STUDY}"] == self.name)]
        return None if parents.empty else str(parents.iloc[0]["run_id"])


class StudyNotOpened(ConfigError):
    """A study a notebook asked for cannot be read. IPython (Jupyter, papermill) shows it as its one line: without
    `_render_traceback_` a missing study was ~60 lines of our, Optuna's and IPython's frames around that line."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def open_studies(
    names: Sequence[str] | str, *, storage: str | None = None, tracking: str | None = None
) -> dict[str, StudyData]:
    """Each named study, opened read-only, by name; what the notebook calls with its parameters.

    Without `tracking` (and without $MLFLOW_TRACKING_URI) the MLflow store is `checkout_tracking_uri()`, the one
    `make sweep` wrote, whatever folder the kernel runs in (Jupyter starts it in the notebook's folder, papermill in
    the caller's); without `storage` the Optuna journal is the one beside it, as for every command. A study that
    cannot be read (unknown, empty, a store that is not there) raises StudyNotOpened, one line.
    """
    chosen = [names] if isinstance(names, str) else list(names)  # `-p studies default` gives a bare string
    if not chosen:
        raise StudyNotOpened("no study to open: name at least one (the notebook's `studies` parameter)")
    uri = tracking or os.environ.get("MLFLOW_TRACKING_URI") or checkout_tracking_uri()
    try:
        return {name: StudyData.open(name, storage=storage, tracking=uri) for name in chosen}
    except ConfigError as exc:
        raise StudyNotOpened(str(exc)) from None


def checkout_tracking_uri() -> str:
    """`sqlite:///mlflow.db` made absolute in the checkout this package runs from (`make` installs it editable, so
    that is where `make sweep` ran); for an installed, non-editable copy, in the working folder."""
    root = Path(__file__).resolve().parents[1]
    folder = root if (root / "pyproject.toml").is_file() else Path.cwd()
    return f"sqlite:///{folder / sqlite_path(DEFAULT_TRACKING_URI)}"


def trials_frame(study: optuna.Study, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trial x finished seed: params, trial state and value, the seed's result, durations, the run id.

    `episodes_to_solve` is the seed's episodes to solve (max_episodes + 1 when censored), for complete and pruned
    trials alike, a whole number (pandas' nullable Int64, <NA> where there is none). Pruned trials of older studies
    recorded only a lower bound per seed: their `episodes_to_solve` is <NA> and `lower_bound` holds the bound
    (elsewhere `lower_bound` equals `episodes_to_solve`). Failed and running trials get one row with seed -1 and no
    values, so they are still counted.
    """
    rows = []
    for trial in study.get_trials(deepcopy=False):
        for seed, (value, bound) in _seed_values(trial).items():
            rows.append(
                {
                    "trial": trial.number,
                    "seed": seed,
                    "state": trial.state.name,
                    "value": trial.value if trial.state == TrialState.COMPLETE else np.nan,
                    "episodes_to_solve": value,
                    "lower_bound": bound,
                    "censored": bool(trial.user_attrs.get(TRIAL_CENSORED, False)),
                    "baseline": is_baseline(trial),
                    "duration_s": trial.duration.total_seconds() if trial.duration else np.nan,
                    "wall_time_s": trial.user_attrs.get(TRIAL_WALL_TIME, np.nan),
                    "env_steps": trial.user_attrs.get(TRIAL_ENV_STEPS, np.nan),
                    "last_step": trial.last_step,
                    "mlflow_run_id": trial.user_attrs.get(TRIAL_RUN_ID),
                    **{f"params.{k}": v for k, v in trial.params.items()},
                }
            )
    frame = pd.DataFrame(rows)
    if not frame.empty:  # whole episodes; pandas' nullable integers keep a missing value <NA> instead of a float NaN
        frame = frame.astype({"episodes_to_solve": "Int64", "lower_bound": "Int64"})
    if runs is not None and not runs.empty and f"tags.{TAG_TRIAL}" in runs and not frame.empty:
        status = runs.set_index("run_id")["status"]
        frame["mlflow_status"] = frame["mlflow_run_id"].map(status)
    return frame


def _seed_values(trial: FrozenTrial) -> dict[int, tuple[float, float]]:
    """{seed: (episodes to solve, lower bound)} of every seed the trial finished."""
    solved = per_seed_values(trial)
    bounds = {int(s): float(v) for s, v in trial.user_attrs.get(TRIAL_LOWER_BOUNDS, {}).items()}
    seeds = sorted({*solved, *bounds})
    if not seeds:
        return {-1: (np.nan, np.nan)}
    return {s: (float(solved.get(s, np.nan)), float(bounds.get(s, solved.get(s, np.nan)))) for s in seeds}


def episodes_frame(data: StudyData) -> pd.DataFrame:
    """Per-episode curves: trial, seed, episode, steps, epsilon, loss. Read from each trial run's `curves.csv`
    artifact; runs logged before that file existed fall back to their `seed_<s>/<curve>` metric histories."""
    runs = data.runs
    if runs.empty or f"tags.{TAG_ROLE}" not in runs:
        return pd.DataFrame(columns=["trial", "seed", "episode", *CURVES])
    trial_runs = runs[runs[f"tags.{TAG_ROLE}"] == "trial"]
    frames = []
    for _, run in trial_runs.iterrows():
        number = int(run[f"tags.{TAG_TRIAL}"])
        table = _curves_artifact(data, run["run_id"])
        if table is None:
            table = _curves_from_metrics(data, run)
        if table is not None and not table.empty:
            table.insert(0, "trial", number)
            frames.append(table[["trial", "seed", "episode", *CURVES]])
    if not frames:
        return pd.DataFrame(columns=["trial", "seed", "episode", *CURVES])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["trial", "seed", "episode"], ignore_index=True)


def _curves_artifact(data: StudyData, run_id: str) -> pd.DataFrame | None:
    import tempfile

    if CURVES_FILE not in {a.path for a in data.client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as folder:
        return read_curves_csv(Path(data.client.download_artifacts(run_id, CURVES_FILE, folder)))


def _curves_from_metrics(data: StudyData, run: pd.Series) -> pd.DataFrame | None:
    frames = []
    for seed in filter(None, str(run.get("params.seeds", "") or "").split(",")):
        columns = {}
        for curve in CURVES:
            history = data.client.get_metric_history(run["run_id"], f"seed_{seed}/{curve}")
            columns[curve] = pd.Series({m.step: m.value for m in history}, dtype=float)
        table = pd.DataFrame(columns)
        if table.empty:
            continue
        table.index.name = "episode"
        table = table.reset_index()
        table.insert(0, "seed", int(seed))
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else None
