"""Held-out validation: re-train the sweep's top configurations and the book default on seeds no trial used.

A sweep's best value is optimistically biased (the max of noisy estimates, on the seeds it was selected on).
Training the winners again on fresh seeds, all as one population, shows how much of the win survives.
Results go to MLflow as runs tagged `dqn_sweep.role=validation` under the study's parent run.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from analysis.compare import bootstrap_ci
from analysis.load import StudyData
from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.trainer import train_population
from sweeps.inspect import ranked_complete_trials
from sweeps.objective import aggregate, censored_value
from sweeps.runner import trial_config
from sweeps.tracking import PARENT_TAG, TAG_ROLE, TAG_STUDY, TAG_TRIAL

HELD_OUT_SEED_START = 10_000  # sweeps use seeds 0..n_seeds-1; these are never among them
BOOK_LABEL = "book"


def held_out_seeds(count: int) -> list[int]:
    return list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + count))


def validate(data: StudyData, *, top: int, seeds: int) -> pd.DataFrame:
    """Train (top-k trials + book) x held-out seeds as one population; log and return one row per config."""
    if top < 1 or seeds < 1:
        raise ConfigError(f"--top and --seeds must be >= 1, got {top} and {seeds}")
    study = data.study
    complete = ranked_complete_trials(study)
    if not complete:
        raise ConfigError(f"study '{study.study_name}' has no complete trial to validate")
    chosen = complete[:top]
    baseline = next((t for t in complete if t.user_attrs.get("baseline") == "book"), None)
    configs: list[tuple[str, int | None, float | None, TrainConfig]] = [
        (f"trial {t.number}" + (f" ({BOOK_LABEL})" if t is baseline else ""), t.number, t.value, trial_config(study, t))
        for t in chosen
    ]
    if baseline not in chosen:  # the book beside the winners (trained once if it is one of them)
        base = trial_config(study, chosen[0])
        book_values = {name: getattr(TrainConfig(), name) for name in chosen[0].params}
        in_sweep = baseline.value if baseline else None
        configs.append((BOOK_LABEL, baseline.number if baseline else None, in_sweep, base.replace(**book_values)))

    fresh = held_out_seeds(seeds)
    members = [(config, seed) for *_, config in configs for seed in fresh]
    started = time.perf_counter()
    results = train_population(members)
    seconds = time.perf_counter() - started

    rows = []
    for index, (label, number, in_sweep, config) in enumerate(configs):
        mine = results[index * seeds : (index + 1) * seeds]
        values = np.array([censored_value(r.episodes_to_solve, config.max_episodes) for r in mine], dtype=float)
        low, high = bootstrap_ci(values)
        rows.append(
            {
                "config": label,
                "trial": number,
                "in_sweep_value": in_sweep,
                "held_out_median": aggregate(values),
                "ci_low": low,
                "ci_high": high,
                "unsolved": int(sum(not r.solved for r in mine)),
                "seeds": len(fresh),
            }
        )
        _log_validation(data, label, number, config, fresh, values, rows[-1], seconds)
    return pd.DataFrame(rows)


def _log_validation(
    data: StudyData,
    label: str,
    number: int | None,
    config: TrainConfig,
    seeds: list[int],
    values: np.ndarray,
    row: dict,
    seconds: float,
) -> None:
    from mlflow.entities import Metric, Param

    client, parent = data.client, data.parent_run_id()
    if data.experiment_id is None:
        return
    tags = {TAG_ROLE: "validation", TAG_STUDY: data.name, "dqn_sweep.validates": label}
    if number is not None:
        tags[TAG_TRIAL] = str(number)
    if parent:
        tags[PARENT_TAG] = parent
    run = client.create_run(data.experiment_id, run_name=f"validation-{label.replace(' ', '-')}", tags=tags)
    params = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in config.to_dict().items()}
    params["seeds"] = ",".join(map(str, seeds))
    now = int(time.time() * 1000)
    metrics = [Metric(f"seed_{s}/episodes_to_solve", float(v), now, 0) for s, v in zip(seeds, values, strict=True)]
    metrics += [
        Metric(name, float(row[name]), now, 0)
        for name in ("held_out_median", "ci_low", "ci_high", "unsolved")
        if row[name] is not None and not np.isnan(row[name])
    ]
    metrics.append(Metric("population_wall_time_s", seconds, now, 0))
    client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(run.info.run_id, "FINISHED")


def held_out_table(data: StudyData) -> pd.DataFrame:
    """The latest validation of each config, read back from MLflow, beside its in-sweep value."""
    runs = data.runs
    column = f"tags.{TAG_ROLE}"
    if runs.empty or column not in runs:
        return pd.DataFrame()
    found = runs[runs[column] == "validation"].sort_values("start_time", ascending=False)
    if found.empty:
        return pd.DataFrame()
    found = found.drop_duplicates("tags.dqn_sweep.validates")
    values = {t.number: t.value for t in data.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    baseline = next(
        (t.value for t in data.study.get_trials(deepcopy=False) if t.user_attrs.get("baseline") == "book"), None
    )
    rows = []
    for _, run in found.iterrows():
        label = run["tags.dqn_sweep.validates"]
        number = run.get(f"tags.{TAG_TRIAL}")
        trial = int(number) if isinstance(number, str) and number else None
        rows.append(
            {
                "config": label,
                "trial": trial,
                "in_sweep_value": values.get(trial) if trial is not None else baseline,
                "held_out_median": run["metrics.held_out_median"],
                "ci_low": run["metrics.ci_low"],
                "ci_high": run["metrics.ci_high"],
                "unsolved": int(run["metrics.unsolved"]),
                "seeds": len(str(run["params.seeds"]).split(",")),
            }
        )
    out = pd.DataFrame(rows)
    out["sort"] = out["trial"].fillna(10**9)
    return out.sort_values(["in_sweep_value", "sort"]).drop(columns="sort").reset_index(drop=True)
