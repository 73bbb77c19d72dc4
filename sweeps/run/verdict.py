"""The verdict that ends a sweep: its winner and the book, trained on seeds no trial saw, paired by seed.

A sweep's best value is the minimum of noisy estimates on the seeds it was selected on, so it is biased low. The
verdict trains both configurations again on fresh seeds (10000, 10001, ...), all in one population, and asks a
paired Wilcoxon signed-rank test whether the difference is real. It says "better" or "worse" only at p < 0.01
(two-sided), so that what it says holds up on other unseen seeds; anything else is "not distinguishable".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import optuna

from dqn_core.config import TrainConfig
from dqn_core.shape import StreamShape
from sweeps.study.existing import best_trial
from sweeps.study.objective import censored_value
from sweeps.study.schema import ATTR_VERDICT, book_config, held_out_seeds, trial_config
from sweeps.study.stats import Paired, aggregate, bootstrap_ci, paired_test

VERDICT_ALPHA = 0.01


@dataclass(frozen=True)
class Verdict:
    winner_trial: int
    seeds: tuple[int, ...]
    winner_values: Mapping[int, float]
    book_values: Mapping[int, float]
    winner_is_book: bool = False
    alpha: float = VERDICT_ALPHA

    @cached_property
    def _paired(self) -> Paired | None:
        return paired_test(self.winner_values, self.book_values)

    @cached_property
    def winner_median(self) -> float:
        return aggregate(list(self.winner_values.values()))

    @cached_property
    def book_median(self) -> float:
        return aggregate(list(self.book_values.values()))

    @cached_property
    def winner_ci(self) -> tuple[float, float]:
        return bootstrap_ci(list(self.winner_values.values()))

    @cached_property
    def book_ci(self) -> tuple[float, float]:
        return bootstrap_ci(list(self.book_values.values()))

    @cached_property
    def p_value(self) -> float | None:
        if self.winner_is_book:
            return None
        return self._paired.p_value if self._paired else None

    @cached_property
    def outcome(self) -> str:
        p = self.p_value
        if self.winner_is_book:
            return "book won"
        if p is None or p >= self.alpha:
            return "not distinguishable"
        paired = self._paired
        lower = paired.median_difference < 0 if paired.median_difference else self.winner_median < self.book_median
        return "better" if lower else "worse"

    @cached_property
    def line(self) -> str:
        book = f"{_num(self.book_median)} ({_interval(self.book_ci)})"
        where = f"on {len(self.seeds)} unseen seeds"
        if self.winner_is_book:
            return f"winner trial {self.winner_trial} is the book's configuration: median {book} {where}"
        winner = f"median {_num(self.winner_median)} (95% CI {_interval(self.winner_ci)})"
        return (
            f"winner trial {self.winner_trial}: {winner} vs book {book} {where}; "
            f"paired Wilcoxon p={_p(self.p_value)}: {self.outcome}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "outcome": self.outcome,
            "winner_trial": self.winner_trial,
            "winner_is_book": self.winner_is_book,
            "seeds": list(self.seeds),
            "winner_values": {str(k): v for k, v in self.winner_values.items()},
            "book_values": {str(k): v for k, v in self.book_values.items()},
            "winner_median": self.winner_median,
            "winner_ci": list(self.winner_ci),
            "book_median": self.book_median,
            "book_ci": list(self.book_ci),
            "p_value": self.p_value,
            "alpha": self.alpha,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            winner_trial=int(data["winner_trial"]),
            seeds=tuple(data["seeds"]),
            winner_values={int(k): v for k, v in data["winner_values"].items()},
            book_values={int(k): v for k, v in data["book_values"].items()},
            winner_is_book=bool(data.get("winner_is_book", False)),
            alpha=float(data.get("alpha", VERDICT_ALPHA)),
        )

    def metrics(self) -> dict[str, float]:
        """What the study's MLflow parent run gets as metrics (tags carry the line and the outcome)."""
        low, high = self.winner_ci
        book_low, book_high = self.book_ci
        values = {
            "verdict_winner_trial": float(self.winner_trial),
            "verdict_seeds": float(len(self.seeds)),
            "verdict_winner_median": self.winner_median,
            "verdict_winner_ci_low": low,
            "verdict_winner_ci_high": high,
            "verdict_book_median": self.book_median,
            "verdict_book_ci_low": book_low,
            "verdict_book_ci_high": book_high,
        }
        if self.p_value is not None:
            values["verdict_p_value"] = self.p_value
        return values


def held_out_values(
    configs: Sequence[TrainConfig], seeds: Sequence[int], *, shape: StreamShape | None = None
) -> list[dict[int, float]]:
    """Train every config on every seed, all as one population; per config {seed: episodes to solve}."""
    from dqn_core.trainer import train_population

    results = train_population([(config, seed) for config in configs for seed in seeds], shape=shape)
    out = []
    for index, config in enumerate(configs):
        mine = results[index * len(seeds) : (index + 1) * len(seeds)]
        out.append(
            {
                seed: float(censored_value(r.episodes_to_solve, config.max_episodes))
                for seed, r in zip(seeds, mine, strict=True)
            }
        )
    return out


def decide(study: optuna.Study, n_seeds: int, *, shape: StreamShape | None = None) -> Verdict | None:
    """The verdict on the study's current winner (None without a complete trial). A verdict the study already
    holds for the same winner and seeds is reused: training is deterministic, so it would come out the same."""
    best = best_trial(study)
    if best is None or n_seeds < 1:
        return None
    seeds = tuple(held_out_seeds(n_seeds))
    stored = study.user_attrs.get(ATTR_VERDICT)
    if stored and stored.get("winner_trial") == best.number and tuple(stored.get("seeds", ())) == seeds:
        return Verdict.from_dict(stored)
    book = book_config(study)
    winner = trial_config(study, best)
    if winner == book:  # by config: a baseline trial whose space could not hold a book value is not the book
        (values,) = held_out_values([book], seeds, shape=shape)
        verdict = Verdict(best.number, seeds, values, values, winner_is_book=True)
    else:
        winner_values, book_values = held_out_values([winner, book], seeds, shape=shape)
        verdict = Verdict(best.number, seeds, winner_values, book_values)
    study.set_user_attr(ATTR_VERDICT, verdict.to_dict())
    return verdict


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if np.isfinite(value) else "n/a"


def _interval(ci: tuple[float, float]) -> str:
    return f"{_num(ci[0])}-{_num(ci[1])}"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
