"""The statistics a sweep's claims rest on: the objective's aggregate, bootstrap CIs, a paired signed-rank test.

Episodes-to-solve is heavy-tailed (one configuration ranges over 30-170 across seeds, and unsolved seeds are
censored at max_episodes + 1), so the aggregate is the median and intervals are percentile bootstraps of it.
Comparisons pair seeds: the same seed gives two configurations the same first weights and env states, which
removes much of the between-seed noise (Wilcoxon signed-rank, the test Optuna's WilcoxonPruner races with).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

MIN_SEEDS_FOR_CI = 8
"""Below this a percentile bootstrap CI of a median is close to [min, max] of the values: shown as too few seeds."""


def aggregate(values: Sequence[float]) -> float:
    """A trial's value: the median over its seeds, robust to the one unlucky seed RL is famous for."""
    return float(np.median(np.asarray(values, dtype=float)))


def bootstrap_ci(
    values: Sequence[float], *, level: float = 0.95, seed: int = 0, resamples: int = 10_000
) -> tuple[float, float]:
    """Percentile bootstrap CI of the median, NaNs dropped (a fixed resampling seed: the same values give the same
    interval)."""
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(data, size=(resamples, data.size), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


@dataclass(frozen=True)
class Paired:
    """Two configurations on the seeds both were trained on."""

    seeds: tuple[int, ...]
    median_difference: float  # median over seeds of (a - b): below zero means a solved sooner
    p_value: float  # two-sided Wilcoxon signed-rank; 1.0 when every pair is equal

    @property
    def n(self) -> int:
        return len(self.seeds)


def paired_test(a: Mapping[int, float], b: Mapping[int, float]) -> Paired | None:
    """Wilcoxon signed-rank over the seeds `a` and `b` share (None below two common seeds)."""
    from scipy.stats import wilcoxon

    common = tuple(sorted(set(a) & set(b)))
    if len(common) < 2:
        return None
    diff = np.array([a[s] - b[s] for s in common], dtype=float)
    if not np.any(diff):
        return Paired(seeds=common, median_difference=0.0, p_value=1.0)
    p = float(wilcoxon(diff, zero_method="zsplit", alternative="two-sided").pvalue)
    return Paired(seeds=common, median_difference=float(np.median(diff)), p_value=p)
