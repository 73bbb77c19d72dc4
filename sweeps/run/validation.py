"""`dqn-sweep validate`: re-train the sweep's top configurations and the book on seeds no trial used.

A sweep's best value is optimistically biased (the minimum of noisy estimates, on the seeds it was selected on).
Training the winners again on fresh seeds, all as one population, shows how much of the win survives. Results go
to MLflow as runs tagged `dqn_sweep.role=validation` under the study's parent run; `analysis.validate` reads them
back. The verdict at the end of `run` is the same comparison for the winner alone, with a paired test.
The training takes tens of seconds, so it shows progress on stderr, like `run`'s trial bar.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from dqn_core.config import TrainConfig
from dqn_core.errors import ConfigError
from dqn_core.shape import StreamShape
from sweeps.run.verdict import held_out_population, held_out_values
from sweeps.study.existing import ranked_complete_trials
from sweeps.study.schema import BOOK, book_config, held_out_seeds, is_baseline, trial_config
from sweeps.study.stats import aggregate, bootstrap_ci, paired_test
from sweeps.tracking.tags import PARENT_TAG, TAG_ROLE, TAG_STUDY, TAG_TRIAL, TAG_VALIDATES
from sweeps.tracking.tracker import StudyTracker, seed_metric


@dataclass(frozen=True)
class ValidationPlan:
    """What `validate` trains, decided before any store is written: the configurations (label, trial number,
    in-sweep value, config; the book's among them), the held-out seeds, and the population's shape and slots."""

    configs: tuple[tuple[str, int | None, float | None, TrainConfig], ...]
    book_index: int
    seeds: tuple[int, ...]
    shape: StreamShape | tuple[StreamShape, ...]
    slots: int


def plan_validation(study: optuna.Study, *, top: int, seeds: int) -> ValidationPlan:
    """The top-k trials and the book on `seeds` held-out seeds; a one-line ConfigError for bad counts, a study
    without a complete trial, or a population that cannot fit in memory even in the smallest stream."""
    if top < 1 or seeds < 1:
        raise ConfigError(f"--top and --validate-seeds must be >= 1, got {top} and {seeds}")
    complete = ranked_complete_trials(study)
    if not complete:
        raise ConfigError(f"study '{study.study_name}' has no complete trial to validate")
    chosen = complete[:top]
    baseline = next((t for t in complete if is_baseline(t)), None)
    configs: list[tuple[str, int | None, float | None, TrainConfig]] = [
        (f"trial {t.number}" + (f" ({BOOK})" if t is baseline else ""), t.number, t.value, trial_config(study, t))
        for t in chosen
    ]
    if baseline not in chosen:  # the book beside the winners (trained once if it is one of them)
        configs.append(
            (BOOK, baseline.number if baseline else None, baseline.value if baseline else None, book_config(study))
        )
    book_index = len(configs) - 1 if baseline not in chosen else chosen.index(baseline)
    shape, slots = held_out_population([config for *_, config in configs], seeds)
    return ValidationPlan(tuple(configs), book_index, tuple(held_out_seeds(seeds)), shape, slots)


def validate(plan: ValidationPlan, tracker: StudyTracker, *, progress: bool = False) -> list[dict]:
    """Train (top-k trials + book) x held-out seeds as one population (or as many slots as fit in memory); log
    and return one row per config. `progress`: one line naming the population, then a bar of finished episodes,
    both on stderr."""
    configs, fresh = plan.configs, list(plan.seeds)
    started = time.perf_counter()
    with _episode_bar(len(configs), len(fresh), plan.slots, enabled=progress) as bar:
        values = held_out_values(
            [config for *_, config in configs], fresh, shape=plan.shape, check_stop=lambda: bar.update(1)
        )
    seconds = time.perf_counter() - started
    book_values = values[plan.book_index]
    rows = []
    for (label, number, in_sweep, config), mine in zip(configs, values, strict=True):
        low, high = bootstrap_ci(list(mine.values()))
        paired = paired_test(mine, book_values) if mine is not book_values else None
        rows.append(
            {
                "config": label,
                "trial": number,
                "in_sweep_value": in_sweep,
                "held_out_median": aggregate(list(mine.values())),
                "ci_low": low,
                "ci_high": high,
                "vs_book_p": paired.p_value if paired else None,
                "unsolved": int(sum(v > config.max_episodes for v in mine.values())),
                "seeds": len(fresh),
            }
        )
        row, what = rows[-1], f"logging the validation of {label}"
        tracker.attempt(what, lambda r=row, c=config, m=mine: _log(tracker, r, c, m, seconds))
    return rows


def _episode_bar(n_configs: int, n_seeds: int, slots: int, *, enabled: bool) -> Any:
    """A tqdm bar of the population's finished episodes (no total: an agent stops when it solves, so the number
    of episodes is unknown until the end; `held_out_values` has a per-episode hook, not a per-agent one)."""
    from tqdm import tqdm

    if enabled:
        agents = n_configs * n_seeds
        configurations = "configuration" if n_configs == 1 else "configurations"
        at_once = "as one population" if slots >= agents else f"{slots} at a time (what fits in memory)"
        print(
            f"validate: training {agents} agents ({n_configs} {configurations} x {n_seeds} held-out seeds) "
            f"{at_once} ...",
            file=sys.stderr,
            flush=True,
        )
    return tqdm(
        desc="validate", unit="episode", disable=not enabled, file=sys.stderr, dynamic_ncols=True, smoothing=0.1
    )


def _log(tracker: StudyTracker, row: dict, config: TrainConfig, values: dict[int, float], seconds: float) -> None:
    from mlflow.entities import Metric, Param

    client = tracker.client
    tags = {
        TAG_ROLE: "validation",
        TAG_STUDY: tracker.study_name,
        TAG_VALIDATES: row["config"],
        PARENT_TAG: tracker.parent_run_id,
    }
    if row["trial"] is not None:
        tags[TAG_TRIAL] = str(row["trial"])
    run = client.create_run(tracker.experiment_id, run_name=f"validation-{row['config'].replace(' ', '-')}", tags=tags)
    params = {k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for k, v in config.to_dict().items()}
    params["seeds"] = ",".join(map(str, values))
    now = int(time.time() * 1000)
    metrics = [Metric(seed_metric(s, "episodes_to_solve"), float(v), now, 0) for s, v in values.items()]
    metrics += [
        Metric(name, float(row[name]), now, 0)
        for name in ("held_out_median", "ci_low", "ci_high", "unsolved", "vs_book_p")
        if row[name] is not None and not np.isnan(row[name])
    ]
    metrics.append(Metric("population_wall_time_s", seconds, now, 0))
    client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(run.info.run_id, "FINISHED")
