"""Comparisons that stay honest about noise: medians, CIs only where there are seeds enough, paired tests.

All functions take the DataFrames of `analysis.load` (or an Optuna study, for importances) and return DataFrames,
so notebooks and the HTML report show the same numbers. The statistics themselves live in `sweeps.study.stats`,
which the sweep's verdict uses too: a number in a report means what the same number means in the verdict line.

Every trial takes the same seeds in the same order (0, 1, 2, ...), so two trials are compared seed by seed over the
seeds both finished (a paired Wilcoxon signed-rank test), never by overlapping intervals: the same seed gives both
the same first weights and environment states, which removes much of the between-seed noise.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from sweeps.study.effect import ALPHA
from sweeps.study.stats import MIN_SEEDS_FOR_CI, Paired, bootstrap_ci, paired_test

__all__ = [
    "ALPHA",
    "COMPLETE",
    "MIN_SEEDS_FOR_CI",
    "PRUNED",
    "STATES",
    "all_param_effects",
    "bootstrap_ci",  # kept importable from here for notebooks and analysis.validate
    "budget_table",
    "ci_text",
    "importances",
    "learning_curves",
    "log_scale_params",
    "param_effects",
    "per_seed_table",
    "per_trial",
    "seed_distribution",
    "state_counts",
    "stopped_seeds",
    "top_configurations",
    "vs_best_text",
]

# ALPHA (imported above) is the verdict's level: the top-configurations table calls a trial worse or better than
# the best at the same p as the verdict does on unseen seeds, so one report never uses two thresholds.

# The trials frames' `state` column holds Optuna's TrialState names (strings: what people read in a table).
COMPLETE = TrialState.COMPLETE.name
PRUNED = TrialState.PRUNED.name
STATES = (COMPLETE, PRUNED, TrialState.FAIL.name, TrialState.RUNNING.name)
"""The states tables count trials in, in the order they list them."""


def ci_text(values: list[float] | np.ndarray) -> str:
    """A trial's 95% CI of the median as text, or why there is none (below MIN_SEEDS_FOR_CI seeds the bootstrap
    interval is about [min, max] of the values and would look like a measurement it is not)."""
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if len(data) < MIN_SEEDS_FOR_CI:
        return f"too few seeds ({len(data)} < {MIN_SEEDS_FOR_CI})"
    low, high = bootstrap_ci(data)
    return f"{low:.4g}-{high:.4g}"


def per_trial(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: state, value, params and its seeds (the trial x seed frame collapsed).

    `per_seed` is {seed: episodes to solve} (whole numbers) of the seeds the trial finished, `seed_values` the same
    values in seed order, `seeds` their count, `median` their median (a pruned trial's too; its `value` is NaN).
    Pruned trials of older studies have only lower bounds: `seeds` counts them, `median` is the median of the bounds
    and `lower_bounds_only` is True.
    """
    params = [c for c in trials.columns if c.startswith("params.")]
    grouped = trials.sort_values(["trial", "seed"]).groupby("trial", sort=True)
    out = grouped[["state", "value", "baseline", "censored", "last_step", *params]].first()
    per_seed, seeds, medians, bounds_only = [], [], [], []
    for _, group in grouped:
        solved = group.dropna(subset=["episodes_to_solve"])
        values = {int(s): int(v) for s, v in zip(solved["seed"], solved["episodes_to_solve"], strict=True)}
        bounds = group["lower_bound"].dropna().tolist()
        only = not values and bool(bounds)
        per_seed.append(values)
        seeds.append(len(bounds) if only else len(values))
        medians.append(float(np.median(bounds if only else list(values.values()))) if seeds[-1] else np.nan)
        bounds_only.append(only)
    out["per_seed"] = per_seed
    out["seed_values"] = [list(d.values()) for d in per_seed]
    out["seeds"] = seeds
    out["median"] = medians
    out["lower_bounds_only"] = bounds_only
    return out.reset_index()


def state_counts(trials: pd.DataFrame) -> pd.Series:
    counts = per_trial(trials)["state"].value_counts()
    return counts.reindex(list(STATES), fill_value=0)


def vs_best_text(paired: Paired | None) -> str:
    """One row's paired comparison with the best trial, in words (`paired` is row minus best)."""
    if paired is None:
        return "not comparable (fewer than 2 seeds in common with the best)"
    stats = f"paired p={paired.p_value:.2g}, n={paired.n}"
    if paired.p_value < ALPHA and paired.median_difference > 0:
        return f"worse than the best ({stats})"
    if paired.p_value < ALPHA and paired.median_difference < 0:
        return f"better than the best on their common seeds ({stats})"
    return f"not distinguishable from the best ({stats})"


def top_configurations(trials: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The k best complete trials and the book baseline, each compared with the best trial seed by seed.

    Columns beside the trial's own: `seeds`, `ci_95` (text: the bootstrap 95% CI of the median, or "too few
    seeds"), `ci_low`/`ci_high` (NaN below MIN_SEEDS_FOR_CI seeds), and against the best trial `common_seeds`,
    `paired_difference` (median over common seeds of row minus best: above zero is slower), `paired_p`
    (two-sided Wilcoxon signed-rank) and `vs_best` in words.
    """
    table = per_trial(trials)
    complete = table[table["state"] == COMPLETE].sort_values(["value", "trial"])
    if complete.empty:
        return pd.DataFrame()
    order = complete["trial"].tolist()
    chosen = complete.head(k)
    book = complete[complete["baseline"]].head(1)
    if not book.empty and book["trial"].iloc[0] not in set(chosen["trial"]):
        chosen = pd.concat([chosen, book])
    best_seeds: Mapping[int, float] = chosen.iloc[0]["per_seed"]
    rows = []
    for position, (_, row) in enumerate(chosen.iterrows()):
        enough = row["seeds"] >= MIN_SEEDS_FOR_CI
        low, high = bootstrap_ci(row["seed_values"]) if enough else (np.nan, np.nan)
        paired = None if position == 0 else paired_test(row["per_seed"], best_seeds)
        rows.append(
            {
                "rank": order.index(row["trial"]) + 1,
                **row.to_dict(),
                "ci_95": ci_text(row["seed_values"]),
                "ci_low": low,
                "ci_high": high,
                "common_seeds": len(best_seeds) if position == 0 else (paired.n if paired else 0),
                "paired_difference": 0.0 if position == 0 else (paired.median_difference if paired else np.nan),
                "paired_p": np.nan if paired is None else paired.p_value,
                "vs_best": "best" if position == 0 else vs_best_text(paired),
            }
        )
    return pd.DataFrame(rows)


def per_seed_table(per_seed: Mapping[str, Mapping[int, float]], max_episodes: int | None = None) -> pd.DataFrame:
    """Episodes to solve of each configuration (rows, by label) on each seed (columns), as text so that no table
    shows 80.0: whole numbers, ">max_episodes" for a seed that never solved (the objective counts it as
    max_episodes + 1), "-" for a seed the configuration did not train."""
    seeds = sorted({seed for values in per_seed.values() for seed in values})
    rows = {
        label: [_episodes_text(values.get(seed), max_episodes) for seed in seeds] for label, values in per_seed.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=[str(seed) for seed in seeds])


def _episodes_text(value: float | None, max_episodes: int | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    if max_episodes is not None and value > max_episodes:
        return f">{max_episodes}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


def budget_table(trials: pd.DataFrame, episodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per state: trials and the seed trainings spent on them; where a racing sweep's budget went.

    `seeds_finished` are the seeds whose value a trial recorded (its median is over these). `seeds_stopped` are
    the seeds still training when their trial ended (the pruner stopped it after a sibling seed's report, or it
    failed): the stream cuts them short and Optuna never hears of them, so only the trial's per-episode curves
    (`episodes`, `StudyData.episodes`) show them; without `episodes` they count 0. `seeds_trained` is both, what a
    sweep's `seeds: N (trial, seed) runs` line counts.
    """
    table = per_trial(trials)
    table["stopped"] = table["trial"].map(stopped_seeds(trials, episodes)).fillna(0).astype(int)
    out = table.groupby("state").agg(
        trials=("trial", "count"), seeds_finished=("seeds", "sum"), seeds_stopped=("stopped", "sum")
    )
    out = out.reindex(list(STATES), fill_value=0)
    out["seeds_trained"] = out["seeds_finished"] + out["seeds_stopped"]
    total = out["seeds_trained"].sum()
    out["share_of_seeds"] = out["seeds_trained"] / total if total else np.nan
    return out.rename_axis("state").reset_index()


def stopped_seeds(trials: pd.DataFrame, episodes: pd.DataFrame | None) -> pd.Series:
    """Per trial, how many seeds played episodes but recorded no value: cut short when their trial ended.

    A trial trains up to `seeds_in_flight` seeds at once; when one seed's report gets the trial pruned, its siblings
    stop at the next host visit. Their curves are in the trial's `curves.csv` (written when the trial ends); their
    values are nowhere. Empty when there are no curves (a study logged before curves.csv, or runs `sync` re-created).
    """
    if episodes is None or episodes.empty:
        return pd.Series(dtype=int, name="stopped")
    has_value = trials["episodes_to_solve"].notna() | trials["lower_bound"].notna()
    finished = pd.MultiIndex.from_frame(trials.loc[has_value, ["trial", "seed"]].astype(int))
    played = pd.MultiIndex.from_frame(episodes[["trial", "seed"]].drop_duplicates().astype(int))
    stopped = played.difference(finished)
    return pd.Series(stopped.get_level_values("trial"), dtype=int).value_counts().rename("stopped")


def seed_distribution(trials: pd.DataFrame) -> pd.DataFrame:
    """How many complete and pruned trials stopped after each number of seeds (rows: seeds, columns: states)."""
    table = per_trial(trials)
    finished = table[table["state"].isin([COMPLETE, PRUNED]) & (table["seeds"] > 0)]
    counts = finished.groupby(["seeds", "state"]).size().unstack("state", fill_value=0)
    return counts.reindex(columns=[COMPLETE, PRUNED], fill_value=0).rename_axis(columns=None).reset_index()


def log_scale_params(study: optuna.Study) -> set[str]:
    """Parameters the search space draws on a log scale (`log: true`), as the trials' Optuna distributions say."""
    return {
        name
        for trial in study.get_trials(deepcopy=False)
        for name, distribution in trial.distributions.items()
        if getattr(distribution, "log", False)
    }


def param_effects(trials: pd.DataFrame, param: str, bins: int = 4, *, log: bool = False) -> pd.DataFrame:
    """Median and IQR of trial values per bin (quantile bins for numbers, one group per category).

    A log-scale parameter is binned on the log of its values, so bin edges sit where the sampler spread the values
    (geometric, not arithmetic, midpoints). Bins are labelled with their real edges, lowest value included:
    pandas' own labels stretch the lowest edge by 0.1% of the range (in log space) or down to below zero.
    """
    table = per_trial(trials)
    column = f"params.{param}"
    complete = table[(table["state"] == COMPLETE) & table[column].notna()]
    if complete.empty:
        return pd.DataFrame(columns=["param", "bin", "trials", "median", "q25", "q75"])
    values = complete[column].rename("bin")
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > bins:
        values = pd.Series(_quantile_bins(values.astype(float), bins, log=log), index=values.index, name="bin")
    stats = complete.groupby(values, observed=True, sort=True)["value"].agg(
        trials="count", median="median", q25=lambda v: v.quantile(0.25), q75=lambda v: v.quantile(0.75)
    )
    stats = stats.reset_index()
    stats.insert(0, "param", param)
    stats["bin"] = stats["bin"].astype(str)
    return stats


def _quantile_bins(values: pd.Series, bins: int, *, log: bool) -> pd.Categorical:
    """Each value's quantile bin as an ordered category labelled "[low, high]" (first bin) or "(low, high]"."""
    scaled = np.log10(values) if log else values
    edges = np.unique(np.quantile(scaled, np.linspace(0, 1, bins + 1)))
    real = 10**edges if log else edges.copy()
    real[0], real[-1] = values.min(), values.max()  # exact, not rounded through log10
    text = _edge_texts(real)
    labels = [f"{'[' if i == 0 else '('}{text[i]}, {text[i + 1]}]" for i in range(len(edges) - 1)]
    codes = pd.cut(scaled, edges, labels=False, include_lowest=True)
    return pd.Categorical.from_codes(codes.astype(int), categories=labels, ordered=True)


def _edge_texts(edges: np.ndarray) -> list[str]:
    """Edges with the fewest significant digits (3 to 8) that keep neighbouring edges apart, never in scientific
    notation and never rounding whole numbers (a bin of epsilon_decay_steps reads [7355, 8742], not 7.36e+03)."""
    whole = [len(str(int(abs(edge)))) if abs(edge) >= 1 else 0 for edge in edges]
    for digits in range(3, 9):
        text = [
            np.format_float_positional(edge, precision=max(digits, n), fractional=False, trim="-")
            for edge, n in zip(edges, whole, strict=True)
        ]
        if len(set(text)) == len(text):
            return text
    return text


def all_param_effects(trials: pd.DataFrame, bins: int = 4, *, log_params: Collection[str] = ()) -> pd.DataFrame:
    """`param_effects` of every parameter; `log_params` (see `log_scale_params`) are binned in log space."""
    params = [c.removeprefix("params.") for c in trials.columns if c.startswith("params.")]
    frames = [param_effects(trials, p, bins, log=p in log_params) for p in params]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def importances(study: optuna.Study) -> pd.Series | None:
    """Optuna's fANOVA importances over complete trials; None when fewer than two complete trials vary."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
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
