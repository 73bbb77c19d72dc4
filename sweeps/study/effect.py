"""What a paired comparison on unseen seeds means: the effect as a ratio with its CI, a test, equivalence, and power.

A verdict that only says "not distinguishable" cannot tell a good book from a test too weak to see a difference.
So the comparison of a configuration `a` with a reference `b` (winner vs book), paired by seed, gives:
- the effect: the ratio of episodes to solve (a / b), the Hodges-Lehmann estimate over the per-seed log ratios
  (the median of their Walsh averages, the estimator that goes with the signed-rank test), with the
  distribution-free CI from the signed-rank statistic (its normal approximation);
- the two-sided paired Wilcoxon p (`stats.paired_test`);
- equivalence by two one-sided tests at 0.05: the 90% CI of the ratio inside 1 +- margin;
- power: the smallest change the test detects at 80% power with these seeds and alpha 0.01, and the seeds that
  would detect a 10% and a 20% change, from the observed spread of the log ratios (normal approximation, scaled
  by the signed-rank test's asymptotic efficiency 3/pi; the standard deviation of heavy-tailed log ratios
  overstates what the rank test needs, so these counts err on the side of more seeds).
Censoring: a seed that did not solve counts at the cap (max_episodes + 1), which understates its gap to the other
configuration (conservative: it pulls the ratio towards 1); a seed censored in both says nothing and is left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeps.study.stats import paired_test

ALPHA = 0.01  # "better" and "worse" need p below this (two-sided)
EQUIVALENCE_ALPHA = 0.05  # each one-sided test of the TOST: a 90% CI
POWER = 0.8
DEFAULT_MARGIN = 0.1
RANK_TEST_EFFICIENCY = 3 / math.pi  # signed-rank vs t-test, normal data (Pitman efficiency)


@dataclass(frozen=True)
class Effect:
    """One paired comparison, a against b, and the word that sums it up."""

    word: str  # "better", "worse", "equivalent" or "inconclusive" (a against b; also when nothing compares)
    n: int  # seeds compared (pairs censored in both left out)
    censored_in_both: int
    ratio: float  # a / b, Hodges-Lehmann; nan when nothing compares
    ci95: tuple[float, float]
    ci90: tuple[float, float]
    p_value: float
    margin: float
    detectable_change: float  # the smallest |1 - ratio| found at 80% power, alpha 0.01, with these n seeds
    seeds_for_10: int  # seeds that detect a 10% change at 80% power
    seeds_for_20: int
    cap: float  # the censoring value (max_episodes + 1)

    @property
    def phrase(self) -> str:
        """The word with what decides it: `equivalent within ±10%`, or what an inconclusive result would need."""
        if not self.n:
            return (
                f"every seed censored at {self.cap:g} in both ({self.censored_in_both} seeds): no comparison possible"
            )
        if self.word == "equivalent":
            return f"equivalent within ±{self.margin:.0%}"
        if self.word == "inconclusive":
            if self.n < 2:
                return f"inconclusive: 1 seed compares; ~{self.seeds_for_10 or 'more'} seeds would detect a 10% change"
            return (
                f"inconclusive: {self.n} seeds detect a {self.detectable_change:.0%} change at 80% power; "
                f"~{self.seeds_for_10} seeds would detect a 10% change"
            )
        return self.word

    def to_dict(self) -> dict[str, Any]:
        """JSON for the study's verdict record (intervals as lists; nan as None)."""
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Effect:
        values = {name: data.get(name) for name in cls.__dataclass_fields__}
        for name in ("ratio", "p_value", "margin", "detectable_change", "cap"):
            values[name] = math.nan if values[name] is None else float(values[name])
        for name in ("ci95", "ci90"):
            pair = values[name] or (None, None)
            values[name] = tuple(math.nan if v is None else float(v) for v in pair)
        for name in ("n", "censored_in_both", "seeds_for_10", "seeds_for_20"):
            values[name] = int(values[name] or 0)
        values["word"] = str(values["word"] or "inconclusive")
        return cls(**values)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Finite numbers for MLflow metrics, named `<prefix>_ratio`, `<prefix>_ratio_ci_low`, ..."""
        values = {
            "ratio": self.ratio,
            "ratio_ci_low": self.ci95[0],
            "ratio_ci_high": self.ci95[1],
            "ratio_ci90_low": self.ci90[0],
            "ratio_ci90_high": self.ci90[1],
            "p_value": self.p_value,
            "equivalence_margin": self.margin,
            "detectable_change": self.detectable_change,
            "seeds_for_10pct": float(self.seeds_for_10),
            "seeds_for_20pct": float(self.seeds_for_20),
            "seeds_compared": float(self.n),
        }
        return {f"{prefix}_{k}": v for k, v in values.items() if math.isfinite(v)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compare(a: Mapping[int, float], b: Mapping[int, float], *, cap: float, margin: float = DEFAULT_MARGIN) -> Effect:
    """`a` against `b` on the seeds both have; values at or above `cap` are censored there."""
    common = sorted(set(a) & set(b))
    both = [s for s in common if a[s] >= cap and b[s] >= cap]
    kept = [s for s in common if s not in both]
    if not kept:
        nan = float("nan")
        return Effect("inconclusive", 0, len(both), nan, (nan, nan), (nan, nan), nan, margin, nan, 0, 0, cap)
    log_ratio = np.log([min(a[s], cap) for s in kept]) - np.log([min(b[s], cap) for s in kept])
    walsh = walsh_averages(log_ratio)
    center = float(np.median(walsh))
    ci95 = _rank_interval(walsh, len(kept), 0.95)
    ci90 = _rank_interval(walsh, len(kept), 1 - 2 * EQUIVALENCE_ALPHA)
    paired = paired_test({s: a[s] for s in kept}, {s: b[s] for s in kept}) if len(kept) >= 2 else None
    p = paired.p_value if paired else 1.0
    spread = float(np.std(log_ratio, ddof=1)) if len(kept) >= 2 else float("nan")
    if p < ALPHA:
        word = "better" if center < 0 else "worse"
    elif math.log(1 - margin) <= ci90[0] and ci90[1] <= math.log(1 + margin):
        word = "equivalent"
    else:
        word = "inconclusive"
    return Effect(
        word=word,
        n=len(kept),
        censored_in_both=len(both),
        ratio=math.exp(center),
        ci95=(math.exp(ci95[0]), math.exp(ci95[1])),
        ci90=(math.exp(ci90[0]), math.exp(ci90[1])),
        p_value=p,
        margin=margin,
        detectable_change=detectable_change(spread, len(kept)),
        seeds_for_10=seeds_needed(spread, 0.1),
        seeds_for_20=seeds_needed(spread, 0.2),
        cap=cap,
    )


def walsh_averages(values: np.ndarray) -> np.ndarray:
    """Every (x_i + x_j) / 2 with i <= j, sorted: the Hodges-Lehmann estimate is their median."""
    i, j = np.triu_indices(len(values))
    return np.sort((values[i] + values[j]) / 2)


def _rank_interval(walsh: np.ndarray, n: int, level: float) -> tuple[float, float]:
    """The signed-rank CI of the center: drop k Walsh averages at each end, k the statistic's lower critical value
    (normal approximation with continuity correction); the whole range when n is too small for the level."""
    from scipy.stats import norm

    z = norm.ppf(1 - (1 - level) / 2)
    mean, sd = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    k = max(math.floor(mean - z * sd - 0.5), 0)
    return float(walsh[k]), float(walsh[len(walsh) - 1 - k])


def _z_sum() -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER))


def detectable_change(spread: float, n: int) -> float:
    """The smallest improvement 1 - ratio the test finds at 80% power with n seeds and this log-ratio spread."""
    if not n or not math.isfinite(spread):
        return float("nan")
    return 1 - math.exp(-_z_sum() * spread / math.sqrt(RANK_TEST_EFFICIENCY * n))


def seeds_needed(spread: float, change: float) -> int:
    """Seeds for 80% power at alpha 0.01 against a ratio of 1 - change (0 when the spread is unknown)."""
    if not math.isfinite(spread):
        return 0
    effect = abs(math.log(1 - change))
    return max(math.ceil((_z_sum() * spread / effect) ** 2 / RANK_TEST_EFFICIENCY), 2)
