"""Comparisons that stay honest about noise: medians with IQRs and bootstrap CIs, never a bare best number.

All functions take the DataFrames of `analysis.load` (or an Optuna study, for importances) and return DataFrames,
so notebooks and the HTML report show the same numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pandas as pd

RESAMPLES = 10_000


def bootstrap_ci(values: np.ndarray, *, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the median. With 3 seeds it is wide, which is the point: it shows the noise."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(RESAMPLES, len(values)), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def per_trial(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: state, value, seeds and params (the trial x seed frame collapsed)."""
    params = [c for c in trials.columns if c.startswith("params.")]
    grouped = trials.groupby("trial", sort=True)
    out = grouped[["state", "value", "baseline", "censored", "last_step", *params]].first()
    out["seed_values"] = grouped["episodes_to_solve"].apply(lambda s: [v for v in s if not np.isnan(v)])
    return out.reset_index()


def state_counts(trials: pd.DataFrame) -> pd.Series:
    counts = per_trial(trials)["state"].value_counts()
    return counts.reindex(["COMPLETE", "PRUNED", "FAIL", "RUNNING"], fill_value=0)


def top_configurations(trials: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The k best complete trials and the book baseline, each with a bootstrap 95% CI of its median.

    `vs_best` says whether a row's CI overlaps the best trial's: overlapping CIs are "not distinguishable".
    """
    table = per_trial(trials)
    complete = table[table["state"] == "COMPLETE"].sort_values(["value", "trial"])
    if complete.empty:
        return pd.DataFrame()
    order = complete["trial"].tolist()
    chosen = complete.head(k)
    book = complete[complete["baseline"]].head(1)
    if not book.empty and book["trial"].iloc[0] not in set(chosen["trial"]):
        chosen = pd.concat([chosen, book])
    rows = []
    for _, row in chosen.iterrows():
        low, high = bootstrap_ci(np.array(row["seed_values"]))
        rows.append({"rank": order.index(row["trial"]) + 1, **row.to_dict(), "ci_low": low, "ci_high": high})
    out = pd.DataFrame(rows)
    best = out.iloc[0]

    def verdict(row: pd.Series) -> str:
        if row["trial"] == best["trial"]:
            return "best"
        overlap = row["ci_low"] <= best["ci_high"] and best["ci_low"] <= row["ci_high"]
        return "not distinguishable from the best" if overlap else "worse than the best"

    out["vs_best"] = out.apply(verdict, axis=1)
    return out


def param_effects(trials: pd.DataFrame, param: str, bins: int = 4) -> pd.DataFrame:
    """Median and IQR of trial values per bin (quantile bins for numbers, one group per category)."""
    table = per_trial(trials)
    column = f"params.{param}"
    complete = table[(table["state"] == "COMPLETE") & table[column].notna()]
    if complete.empty:
        return pd.DataFrame(columns=["param", "bin", "trials", "median", "q25", "q75"])
    values = complete[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > bins:
        groups = pd.qcut(values, q=bins, duplicates="drop")
    else:
        groups = values
    stats = complete.groupby(groups, observed=True)["value"].agg(
        trials="count", median="median", q25=lambda v: v.quantile(0.25), q75=lambda v: v.quantile(0.75)
    )
    stats = stats.reset_index().rename(columns={column: "bin"})
    stats.insert(0, "param", param)
    stats["bin"] = stats["bin"].astype(str)
    return stats


def all_param_effects(trials: pd.DataFrame, bins: int = 4) -> pd.DataFrame:
    params = [c.removeprefix("params.") for c in trials.columns if c.startswith("params.")]
    frames = [param_effects(trials, p, bins) for p in params]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def importances(study: optuna.Study) -> pd.Series | None:
    """Optuna's fANOVA importances over complete trials; None when fewer than two complete trials vary."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
    except (RuntimeError, ValueError):
        return None
    return pd.Series(result, name="importance")


def learning_curves(episodes: pd.DataFrame, trials: list[int], metric: str = "steps") -> pd.DataFrame:
    """Median and IQR across seeds per episode; a seed that stopped (solved/pruned) no longer contributes."""
    subset = episodes[episodes["trial"].isin(trials)]
    if subset.empty:
        return pd.DataFrame(columns=["trial", "episode", "median", "q25", "q75", "seeds"])
    grouped = subset.groupby(["trial", "episode"])[metric]
    return pd.DataFrame(
        {
            "median": grouped.median(),
            "q25": grouped.quantile(0.25),
            "q75": grouped.quantile(0.75),
            "seeds": grouped.count(),
        }
    ).reset_index()
