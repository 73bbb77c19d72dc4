"""The verdict as a record: what `dqn-sweep run` stores in the study (user attribute `verdict`) and what reads it back.

`sweeps.run.verdict` computes a verdict (it trains agents) into this record; analysis, `best` and the warm start
only read it. The record is what was stored, never recomputed on reading, so this module imports no training code
(the comparison's numbers are an `effect.Effect`, read back as stored). A record from an older study may lack
fields: those read back as None (or empty), never guessed. Per-seed values are stored as lists in the order of
`seeds` (compact: `optuna studies` prints the study's attributes on one row); older records keyed them by seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeps.study.effect import Effect
from sweeps.study.schema import ATTR_VERDICT, record, recorded

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Verdict:
    """The sweep's winner and the book, trained again on seeds no trial saw, compared seed by seed."""

    line: str  # the verdict in one line, as `run` prints it
    # "better", "worse", "equivalent" or "inconclusive": the compared trial against the book (older records:
    # "not distinguishable" or "book won")
    outcome: str | None
    winner_trial: int | None
    seeds: tuple[int, ...]  # the unseen seeds, 10000, 10001, ...
    winner_values: dict[int, float]  # episodes to solve by seed
    book_values: dict[int, float]
    winner_median: float | None
    winner_ci: tuple[float, float] | None  # 95% bootstrap CI of the median
    book_median: float | None
    book_ci: tuple[float, float] | None
    p_value: float | None  # paired Wilcoxon signed-rank, two-sided, compared trial vs book; None when nothing compares
    alpha: float | None  # the level below which the verdict says "better" or "worse"
    winner_is_book: bool = False
    compared_trial: int | None = None  # the winner, or the runner-up when the book won (None: nothing compared)
    runner_up_values: dict[int, float] = field(default_factory=dict)  # when the book won
    effect: Effect | None = None  # compared trial / book: ratio, CIs, equivalence, power

    def to_dict(self) -> dict[str, Any]:
        """The study attribute's value (JSON: seeds as string keys, intervals as lists)."""
        return {
            "line": self.line,
            "outcome": self.outcome,
            "winner_trial": self.winner_trial,
            "winner_is_book": self.winner_is_book,
            "seeds": list(self.seeds),
            "winner_values": self._in_seed_order(self.winner_values),
            "book_values": self._in_seed_order(self.book_values),
            "winner_median": self.winner_median,
            "winner_ci": None if self.winner_ci is None else list(self.winner_ci),
            "book_median": self.book_median,
            "book_ci": None if self.book_ci is None else list(self.book_ci),
            "p_value": self.p_value,
            "alpha": self.alpha,
            "compared_trial": self.compared_trial,
            "runner_up_values": self._in_seed_order(self.runner_up_values) if self.runner_up_values else None,
            "effect": None if self.effect is None else self.effect.to_dict(),
        }

    def _in_seed_order(self, values: Mapping[int, float]) -> list[float] | dict[str, float]:
        if set(values) == set(self.seeds):
            return [values[s] for s in self.seeds]
        return {str(k): v for k, v in values.items()}  # values of other seeds (never written by `run`)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        seeds = tuple(int(s) for s in data.get("seeds") or ())
        effect = data.get("effect")
        return cls(
            line=str(data.get("line", "")),
            outcome=data.get("outcome"),
            winner_trial=_int(data.get("winner_trial")),
            seeds=seeds,
            winner_values=_by_seed(data.get("winner_values"), seeds),
            book_values=_by_seed(data.get("book_values"), seeds),
            winner_median=_float(data.get("winner_median")),
            winner_ci=_interval(data.get("winner_ci")),
            book_median=_float(data.get("book_median")),
            book_ci=_interval(data.get("book_ci")),
            p_value=_float(data.get("p_value")),
            alpha=_float(data.get("alpha")),
            winner_is_book=bool(data.get("winner_is_book", False)),
            compared_trial=_int(data.get("compared_trial")),
            runner_up_values=_by_seed(data.get("runner_up_values"), seeds),
            effect=Effect.from_dict(effect) if isinstance(effect, Mapping) else None,
        )

    @classmethod
    def of_study(cls, study: optuna.Study) -> Verdict | None:
        """The study's latest verdict, or None when it has none."""
        data = recorded(study, ATTR_VERDICT)
        if not isinstance(data, Mapping) or not data:
            return None
        return cls.from_dict(data)

    def store(self, study: optuna.Study) -> None:
        """Record this verdict as the study's latest: the record in full, and its line where Optuna's tools and
        optuna-dashboard show a study's user attributes."""
        record(study, ATTR_VERDICT, self.to_dict())
        study.set_user_attr(ATTR_VERDICT, self.line)

    def metrics(self) -> dict[str, float]:
        """What the study's MLflow parent run gets as metrics (tags carry the line and the outcome); fields the
        record lacks are left out."""
        values: dict[str, float | None] = {
            "verdict_winner_trial": None if self.winner_trial is None else float(self.winner_trial),
            "verdict_seeds": float(len(self.seeds)),
            "verdict_winner_median": self.winner_median,
            "verdict_winner_ci_low": None if self.winner_ci is None else self.winner_ci[0],
            "verdict_winner_ci_high": None if self.winner_ci is None else self.winner_ci[1],
            "verdict_book_median": self.book_median,
            "verdict_book_ci_low": None if self.book_ci is None else self.book_ci[0],
            "verdict_book_ci_high": None if self.book_ci is None else self.book_ci[1],
            "verdict_p_value": self.p_value,
            "verdict_compared_trial": None if self.compared_trial is None else float(self.compared_trial),
        }
        if self.effect is not None:
            values |= self.effect.metrics("verdict")  # its p_value is the one above
        return {name: value for name, value in values.items() if value is not None}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _interval(value: Any) -> tuple[float, float] | None:
    if not value or len(value) != 2 or any(v is None for v in value):
        return None
    return float(value[0]), float(value[1])


def _by_seed(values: Any, seeds: tuple[int, ...]) -> dict[int, float]:
    if isinstance(values, list):
        return {seed: float(v) for seed, v in zip(seeds, values, strict=True)}
    return {int(seed): float(v) for seed, v in (values or {}).items()}
