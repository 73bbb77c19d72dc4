"""Each searched parameter's effect on episodes to solve, from every (trial, seed) run of a study.

fANOVA and the binned `compare.param_effects` see complete trials only, one median each, and give no interval, so a
flat result there cannot say whether the knobs do nothing or the sweep measured too little. This model uses every
run, pruned trials included, blocks on the seed and puts a 95% CI on each effect, so a null result has a size.

The method, a log-linear least-squares fit with a two-way bootstrap:

- Response: log(episodes to solve) of each (trial, seed) run of complete and pruned trials. A seed that never
  solved counts at its cap, max_episodes + 1, as the sweep counts it: that understates how slow a bad setting is,
  so censoring pulls effects towards none (conservative for "this knob matters", not for "nothing matters").
- Seeds are a blocking factor: one intercept per seed (the same seed gives every trial the same first weights and
  environment states), so seed-to-seed noise does not blur the parameters.
- A numeric parameter enters as its value scaled to [0, 1] over its searched range (the trials' Optuna
  distributions: low -> high; the log of the value where it was sampled on a log scale). Its effect is the ratio of
  predicted median episodes at the top of the range to the bottom, exp(slope): a straight line in the (log) value,
  so an effect that peaks inside the range and falls at both ends reads as none.
- A categorical parameter enters as one indicator per level; each level is compared with the first level of its
  choices that some run used (one row per level).
- A parameter only some trials have (a conditional space) gets a "parameter absent" indicator and the middle of its
  range where absent: those runs still inform the seeds and the other parameters, not this one's effect.
- 95% CI: percentile interval of 400 resamples that draw the trials and the seeds with replacement, independently
  (Owen's pigeonhole bootstrap for a crossed design, slightly conservative). Resampling seeds alone would treat the
  trials the sweep happened to draw as fixed, and a parameter correlated with a lucky configuration would look
  sure. The generator is seeded: the same study gives the same table.

The "median" is the model's: with noise symmetric on the log scale the fitted value is the median run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from analysis.load import trials_frame

__all__ = ["COLUMNS", "METHOD", "RESAMPLES", "KnobEffects", "effects_sentence", "flat_space_sentence", "knob_effects"]

RESAMPLES = 400
"""Bootstrap resamples: enough for stable 2.5% and 97.5% percentiles, under a second on a sweep's thousand runs."""

MIN_IDENTIFIED = 0.9
"""Below this share of resamples that identify every effect (few trials: a resample that leaves out a category or
repeats too few configurations), the CIs are not shown: they would rest on the lucky resamples only."""

COLUMNS = ["parameter", "compared", "ratio", "ci_low", "ci_high", "range_seen", "runs", "trials"]
"""`ratio`: predicted median episodes at the right of `compared` over the left (above 1: slower); `ci_low`/`ci_high`
its 95% CI; `range_seen`: share of the searched range the trials spanned (numeric parameters); `runs`/`trials`:
those that had the parameter."""

METHOD = (
    "Least squares of log(episodes to solve) over every (trial, seed) run, pruned trials included, with one intercept "
    "per seed (seeds as blocks); numeric parameters scaled to [0, 1] over their searched range (on the log of the "
    "value where sampled on a log scale), categorical ones as levels against the first. ratio: predicted median "
    "episodes at the high end over the low end (or at a level over the first); above 1 is slower. 95% CI: "
    f"percentile bootstrap over {RESAMPLES} resamples of trials and seeds. A straight line in the (log) value: an "
    "effect that peaks inside the range is not seen. A seed that never solved counts at max_episodes + 1, which "
    "pulls effects towards none."
)
"""What the report and the notebook print under the table."""

_FINISHED = (TrialState.COMPLETE.name, TrialState.PRUNED.name)


@dataclass(frozen=True)
class KnobEffects:
    """The fitted effects: `table` (one row per numeric parameter or categorical level, `COLUMNS`), the parameters
    that could not be estimated and why, or why nothing was fitted at all."""

    table: pd.DataFrame
    skipped: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None  # why `table` is empty, or why its CIs are missing
    runs: int = 0
    trials: int = 0
    seeds: int = 0
    resamples: int = 0  # resamples that identified every effect (the CIs' sample)


@dataclass(frozen=True)
class _Contrast:
    """One table row: a design column and what it compares."""

    parameter: str
    compared: str
    column: int
    range_seen: float
    runs: int
    trials: int


@dataclass(frozen=True)
class _Design:
    matrix: np.ndarray  # runs x (seeds + parameter columns)
    contrasts: list[_Contrast]
    skipped: dict[str, str]


def knob_effects(
    study: optuna.Study, trials: pd.DataFrame | None = None, *, resamples: int = RESAMPLES, seed: int = 0
) -> KnobEffects:
    """Fit the model of the module docstring on `study`'s runs (`trials`: its `analysis.load.trials_frame`, read
    again when not given) and bootstrap it with a generator seeded by `seed`."""
    frame = trials_frame(study) if trials is None else trials
    runs = _runs(frame)
    if runs.empty:
        return KnobEffects(_empty(), reason="no complete or pruned trial has a seed result")
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    finished = [by_number[n] for n in runs["trial"].unique()]
    seeds = np.sort(runs["seed"].unique())
    design = _design(runs, finished, by_number, seeds)
    counts = {"runs": len(runs), "trials": len(finished), "seeds": len(seeds)}
    n_params = design.matrix.shape[1] - len(seeds)
    if not design.contrasts:
        return KnobEffects(_empty(), design.skipped, "no searched parameter varies across the trials", **counts)
    if len(finished) < n_params + 3 or len(seeds) < 2:
        reason = (
            f"too few runs: {len(finished)} trials on {len(seeds)} seeds for {n_params} parameter columns (at least "
            f"{n_params + 3} trials and 2 seeds are needed)"
        )
        return KnobEffects(_empty(), design.skipped, reason, **counts)
    y = np.log(np.maximum(runs["episodes_to_solve"].to_numpy(dtype=float), 1.0))
    point = np.linalg.lstsq(design.matrix, y, rcond=None)[0]
    columns = [c.column for c in design.contrasts]
    draws = _bootstrap(design.matrix, y, runs, seeds, columns, resamples, seed)
    table = _empty(len(columns))
    table["parameter"] = [c.parameter for c in design.contrasts]
    table["compared"] = [c.compared for c in design.contrasts]
    table["ratio"] = np.exp(point[columns])
    table["range_seen"] = [c.range_seen for c in design.contrasts]
    table["runs"] = [c.runs for c in design.contrasts]
    table["trials"] = [c.trials for c in design.contrasts]
    reason = None
    if len(draws) >= MIN_IDENTIFIED * resamples:
        low, high = np.quantile(draws, [0.025, 0.975], axis=0)
        table["ci_low"], table["ci_high"] = np.exp(low), np.exp(high)
    else:
        reason = (
            f"only {len(draws)} of {resamples} resamples of these {len(finished)} trials could estimate every "
            "effect (too few trials for the parameters)"
        )
    return KnobEffects(table, design.skipped, reason, resamples=len(draws), **counts)


def flat_space_sentence(effects: KnobEffects) -> str | None:
    """The null result with its size, only when every effect's CI includes no effect (ratio 1); None otherwise.

    X is the farthest CI bound from 1 as a factor in either direction (a bound of 0.8 is a 25% change the other way),
    rounded up: the sentence claims no more than the intervals do.
    """
    table = effects.table
    if table.empty or table[["ci_low", "ci_high"]].isna().any().any():
        return None
    if not ((table["ci_low"] <= 1) & (table["ci_high"] >= 1)).all():
        return None
    bounds = table[["ci_low", "ci_high"]].to_numpy().ravel()
    largest = math.ceil(100 * (np.maximum(bounds, 1 / bounds).max() - 1))
    skipped = f" ({', '.join(sorted(effects.skipped))}: not estimated)" if effects.skipped else ""
    return f"Within the searched ranges, no parameter moves the median by more than {largest}% (95% CI){skipped}."


def effects_sentence(effects: KnobEffects) -> str:
    """One sentence for the reader: the flat space, or the effects whose CI excludes none, or why there is none."""
    flat = flat_space_sentence(effects)
    if flat is not None:
        return flat
    table = effects.table
    if table.empty:
        return f"No per-parameter effect: {effects.reason}."
    if table["ci_low"].isna().all():
        return f"No 95% CI of the per-parameter effects: {effects.reason}."
    clear = table[(table["ci_low"] > 1) | (table["ci_high"] < 1)]
    named = "; ".join(
        f"{r.parameter} {r.compared}: median x{r.ratio:.3g} (95% CI {r.ci_low:.3g}-{r.ci_high:.3g})"
        for r in clear.itertuples()
    )
    return f"The 95% CI excludes no effect for {named}."


def _empty(rows: int = 0) -> pd.DataFrame:
    return pd.DataFrame({c: [np.nan] * rows for c in COLUMNS})


def _runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The (trial, seed) runs with a result: complete and pruned trials; failed, running and lower-bound-only
    (older studies) rows have none."""
    if frame.empty:
        return frame
    runs = frame[frame["state"].isin(_FINISHED) & frame["episodes_to_solve"].notna() & (frame["seed"] >= 0)]
    return runs.sort_values(["trial", "seed"], ignore_index=True)


def _design(
    runs: pd.DataFrame, finished: list[FrozenTrial], by_number: dict[int, FrozenTrial], seeds: np.ndarray
) -> _Design:
    """Seed indicators, then each parameter's columns; a column that adds nothing (confounded) is dropped."""
    seed_columns = (runs["seed"].to_numpy()[:, None] == seeds[None, :]).astype(float)
    trial_of_run = [by_number[int(n)] for n in runs["trial"]]
    names = sorted({name for trial in finished for name in trial.distributions})
    blocks, skipped = [], {}
    for name in names:
        distributions = [t.distributions[name] for t in finished if name in t.distributions]
        present = np.array([name in t.params for t in trial_of_run])
        values = [t.params.get(name) for t in trial_of_run]
        if any(isinstance(d, CategoricalDistribution) for d in distributions):
            block = _categorical(name, distributions, values, present, runs)
        else:
            block = _numeric(name, distributions, values, present, runs)
        if isinstance(block, str):
            skipped[name] = block
        else:
            blocks.append(block)
    return _assemble(seed_columns, blocks, skipped)


# A parameter's block: its columns (runs x k), each column's contrast (None for the absent indicator).
_Block = tuple[np.ndarray, list["_Contrast | None"]]


def _numeric(name: str, distributions: list, values: list, present: np.ndarray, runs: pd.DataFrame) -> _Block | str:
    low = min(d.low for d in distributions)
    high = max(d.high for d in distributions)
    log = any(getattr(d, "log", False) for d in distributions) and low > 0
    if high <= low:
        return f"not searched (low = high = {low:g})"
    scale = np.log if log else (lambda v: v)
    x = np.full(len(values), 0.5)  # absent: the middle, with its own indicator
    seen = np.array([float(v) for v, p in zip(values, present, strict=True) if p])
    x[present] = (scale(seen) - scale(low)) / (scale(high) - scale(low))
    if np.unique(seen).size < 2:
        return "the trials did not vary it"
    contrast = _Contrast(
        name, f"{_number(low)} -> {_number(high)}", -1, float(np.ptp(x[present])), *_counts(runs, present)
    )
    return _with_absent([x], [contrast], present)


def _categorical(name: str, distributions: list, values: list, present: np.ndarray, runs: pd.DataFrame) -> _Block | str:
    choices = list(dict.fromkeys(c for d in distributions for c in d.choices))
    used = [c for c in choices if any(p and v == c for v, p in zip(values, present, strict=True))]
    if len(used) < 2:
        return "the trials did not vary it"
    reference, *levels = used
    columns = [np.array([p and v == level for v, p in zip(values, present, strict=True)], float) for level in levels]
    contrasts = [_Contrast(name, f"{reference} -> {level}", -1, np.nan, *_counts(runs, present)) for level in levels]
    return _with_absent(columns, contrasts, present)


def _number(value: float) -> str:
    """A range's end as the sweep file would write it: 10000, not 1e+04; 0.0003, not 3e-04."""
    return np.format_float_positional(value, precision=4, fractional=False, trim="-")


def _counts(runs: pd.DataFrame, present: np.ndarray) -> tuple[int, int]:
    return int(present.sum()), int(runs.loc[present, "trial"].nunique())


def _with_absent(columns: list[np.ndarray], contrasts: list[_Contrast], present: np.ndarray) -> _Block:
    if present.all():
        return np.column_stack(columns), list(contrasts)
    return np.column_stack([*columns, (~present).astype(float)]), [*contrasts, None]


def _assemble(seed_columns: np.ndarray, blocks: list[_Block], skipped: dict[str, str]) -> _Design:
    """Keep a parameter column only where it raises the design's rank: one confounded with the seeds or the columns
    before it (two parameters always set together, an absent indicator equal to a category) has no effect of its own.
    """
    kept = [seed_columns]
    rank = np.linalg.matrix_rank(seed_columns)
    contrasts, confounded = [], set()
    for columns, block_contrasts in blocks:
        for column, contrast in zip(columns.T, block_contrasts, strict=True):
            candidate = np.column_stack([*kept, column])
            if np.linalg.matrix_rank(candidate) > rank:
                kept, rank = [candidate], rank + 1
                if contrast is not None:
                    contrasts.append(replace(contrast, column=candidate.shape[1] - 1))
            elif contrast is not None:
                confounded.add(contrast.parameter)
    for name in confounded:
        skipped[name] = "confounded with other parameters or the seeds in these trials"
    contrasts = [c for c in contrasts if c.parameter not in confounded]
    return _Design(np.column_stack(kept), contrasts, skipped)


def _bootstrap(
    matrix: np.ndarray,
    y: np.ndarray,
    runs: pd.DataFrame,
    seeds: np.ndarray,
    columns: list[int],
    resamples: int,
    seed: int,
) -> np.ndarray:
    """Coefficients of `columns` in each resample that identifies them all (resamples x columns).

    A resample draws trials and seeds with replacement; a run's weight is (times its trial was drawn) x (times its
    seed was drawn), which equals fitting the crossed copies without building them.
    """
    rng = np.random.default_rng(seed)
    trial_ids, trial_index = np.unique(runs["trial"].to_numpy(), return_inverse=True)
    seed_index = np.searchsorted(seeds, runs["seed"].to_numpy())
    draws = []
    for _ in range(resamples):
        trial_weight = np.bincount(rng.integers(len(trial_ids), size=len(trial_ids)), minlength=len(trial_ids))
        seed_weight = np.bincount(rng.integers(len(seeds), size=len(seeds)), minlength=len(seeds))
        weight = trial_weight[trial_index] * seed_weight[seed_index]
        rows = weight > 0
        root = np.sqrt(weight[rows])
        scaled = matrix[rows] * root[:, None]
        used = np.flatnonzero(np.abs(scaled).sum(axis=0) > 0)
        if not set(columns) <= set(used.tolist()):
            continue  # a category or a parameter's whole range left out: that effect is not estimable here
        coefficients, _, rank, _ = np.linalg.lstsq(scaled[:, used], y[rows] * root, rcond=None)
        if rank < len(used):
            continue
        position = {c: i for i, c in enumerate(used.tolist())}
        draws.append(coefficients[[position[c] for c in columns]])
    return np.array(draws).reshape(-1, len(columns))
