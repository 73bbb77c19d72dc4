"""Held-out validation, read back: the runs `dqn-sweep validate` logged (role `validation`), beside the in-sweep
values. Training them is `sweeps.run.validation`; analysis only reads stores.
"""

from __future__ import annotations

import pandas as pd
from optuna.trial import TrialState

from analysis.load import StudyData
from sweeps.study.schema import HELD_OUT_SEED_START, is_baseline
from sweeps.tracking.tags import TAG_ROLE, TAG_TRIAL, TAG_VALIDATES

__all__ = ["HELD_OUT_SEED_START", "held_out_table"]


def held_out_table(data: StudyData) -> pd.DataFrame:
    """The latest validation of each config, read back from MLflow, beside its in-sweep value, with the columns
    `dqn-sweep validate` printed: `vs_book_p` is the paired Wilcoxon p against the book on the same held-out seeds
    (NaN on the book's own row, and on runs logged before validate recorded it)."""
    runs = data.runs
    column = f"tags.{TAG_ROLE}"
    if runs.empty or column not in runs:
        return pd.DataFrame()
    found = runs[runs[column] == "validation"].sort_values("start_time", ascending=False)
    if found.empty:
        return pd.DataFrame()
    found = found.drop_duplicates(f"tags.{TAG_VALIDATES}")
    values = {t.number: t.value for t in data.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    baseline = next((t.value for t in data.study.get_trials(deepcopy=False) if is_baseline(t)), None)
    rows = []
    for _, run in found.iterrows():
        label = run[f"tags.{TAG_VALIDATES}"]
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
                "vs_book_p": run.get("metrics.vs_book_p", float("nan")),
                "unsolved": int(run["metrics.unsolved"]),
                "seeds": len(str(run["params.seeds"]).split(",")),
            }
        )
    out = pd.DataFrame(rows)
    out["sort"] = out["trial"].fillna(10**9)
    return out.sort_values(["in_sweep_value", "sort"]).drop(columns="sort").reset_index(drop=True)
